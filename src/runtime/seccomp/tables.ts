/**
 * The architectures minibox's filter compiler knows: their AUDIT_ARCH value
 * (what the kernel puts in seccomp_data.arch) and their syscall numbers
 * (syscalls.json, generated from the kernel headers by
 * scripts/gen-syscall-tables.mjs).
 */
import tables from "./syscalls.json" with { type: "json" };

export interface ArchInfo {
  /** libseccomp's name, as in a profile's architectures. */
  scmp: string;
  /** AUDIT_ARCH_* (linux/audit.h): EM_* | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE. */
  audit: number;
  /** name → number. */
  syscalls: Readonly<Record<string, number>>;
}

export const ARCHES: Readonly<Record<string, ArchInfo>> = {
  SCMP_ARCH_X86_64: { scmp: "SCMP_ARCH_X86_64", audit: 0xc000003e, syscalls: tables.x86_64 },
  SCMP_ARCH_X86: { scmp: "SCMP_ARCH_X86", audit: 0x40000003, syscalls: tables.i386 },
  SCMP_ARCH_AARCH64: { scmp: "SCMP_ARCH_AARCH64", audit: 0xc00000b7, syscalls: tables.aarch64 },
};

/**
 * What a host (process.arch) runs, native first. An x86_64 kernel runs i386
 * code too (x32 is refused separately); an arm64 one may run 32-bit ARM, for
 * which minibox has no table, so such a process is killed by the filter.
 */
export const HOST_ARCHES: Readonly<Record<string, readonly string[]>> = {
  x64: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
  arm64: ["SCMP_ARCH_AARCH64"],
};

/** The x32 ABI's syscalls are x86_64's numbers with this bit set (__X32_SYSCALL_BIT). */
export const X32_SYSCALL_BIT = 0x40000000;
