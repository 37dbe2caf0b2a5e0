// The compiled filter against the reference reading of the spec, syscall by
// syscall, through the BPF interpreter in test/support/bpf.ts.
import { describe, expect, it } from "vitest";
import { decode } from "../../src/runtime/seccomp/bpf.js";
import { compileFilter } from "../../src/runtime/seccomp/compile.js";
import { defaultProfile } from "../../src/runtime/seccomp/default-profile.js";
import {
  resolveProfile,
  type SeccompProfile,
  type SpecSeccomp,
} from "../../src/runtime/seccomp/profile.js";
import { ARCHES } from "../../src/runtime/seccomp/tables.js";
import { DEFAULT_CAPABILITIES } from "../../src/runtime/spec.js";
import { checkProgram, runFilter } from "../support/bpf.js";
import { ALLOW, AUDIT, errno, KILL_PROCESS, reference } from "./seccomp-reference.js";

const KERNEL = "6.18.44";
const ENOSYS = 38;
const EPERM = 1;
const CLONE_NEWUSER = 0x10000000n;
const CLONE_THREAD_FLAGS = 0x3d0f00n; // what glibc's pthread_create passes

function spec(caps: readonly string[] = DEFAULT_CAPABILITIES, kernel = KERNEL): SpecSeccomp {
  return resolveProfile(defaultProfile(), { arch: "x64", capabilities: caps, kernel });
}

function run(s: SpecSeccomp, arch: number, nr: number, args: readonly bigint[] = []) {
  const program = decode(compileFilter(s, "x64").program);
  return runFilter(program, { arch, nr, args }).ret;
}

const nr64 = (name: string) => ARCHES.SCMP_ARCH_X86_64?.syscalls[name] as number;
const nr32 = (name: string) => ARCHES.SCMP_ARCH_X86?.syscalls[name] as number;

/** Argument vectors that exercise every comparison in the default profile. */
const ARG_VECTORS: bigint[][] = [
  [],
  [0xffffffffn],
  [0xffffffffffffffffn],
  [38n],
  [39n],
  [40n],
  [41n],
  [0x100000026n],
  [8n],
  [0x20000n],
  [0x20008n],
  [CLONE_NEWUSER],
  [CLONE_THREAD_FLAGS],
  [0x80n],
  [16n, 0n, 9n],
  [0x123456789abcdefn, 5n, 0x8000000000000000n],
];

function sweep(s: SpecSeccomp, label: string): { worst: Record<number, number>; checked: number } {
  const program = decode(compileFilter(s, "x64").program);
  checkProgram(program);
  const worst: Record<number, number> = {};
  let checked = 0;
  for (const [arch, table] of [
    [AUDIT.x86_64, ARCHES.SCMP_ARCH_X86_64],
    [AUDIT.i386, ARCHES.SCMP_ARCH_X86],
  ] as const) {
    const max = Math.max(...Object.values(table?.syscalls ?? {}));
    for (let nr = 0; nr <= max + 64; nr++) {
      for (const args of ARG_VECTORS) {
        const got = runFilter(program, { arch, nr, args });
        const want = reference(s, arch, nr, args);
        if (got.ret !== want) {
          throw new Error(
            `${label}: arch 0x${arch.toString(16)} nr ${nr} args ${args}: 0x${got.ret.toString(16)} ≠ 0x${want.toString(16)}`,
          );
        }
        worst[arch] = Math.max(worst[arch] ?? 0, got.comparisons);
        checked++;
      }
    }
  }
  return { worst, checked };
}

describe("compiled default profile", () => {
  it("decides every syscall number on x86_64 and i386 as the profile reads, for several capability sets", () => {
    const sets = [
      DEFAULT_CAPABILITIES,
      [...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"],
      [...DEFAULT_CAPABILITIES, "CAP_SYS_PTRACE"],
      [],
    ];
    for (const caps of sets) {
      const { checked } = sweep(spec(caps), caps.join(","));
      expect(checked).toBeGreaterThan(10000);
    }
  });

  it("is small and fast: instruction count and worst-case comparisons per syscall", () => {
    const s = spec();
    const compiled = compileFilter(s, "x64");
    const { worst } = sweep(s, "default");
    const [x86_64, i386] = [worst[AUDIT.x86_64], worst[AUDIT.i386]];
    console.log(
      `default profile: ${compiled.instructions} instructions, ${compiled.allowed} x86_64 syscalls allowed, at most ${x86_64} comparisons per x86_64 syscall, ${i386} per i386 one`,
    );
    expect(compiled.instructions).toBeLessThan(300);
    expect(x86_64).toBeLessThanOrEqual(13);
    expect(i386).toBeLessThanOrEqual(14);
    expect(compiled.allowed).toBeGreaterThan(300);
    expect(compiled.program.length).toBe(compiled.instructions * 8);
  });

  it("refuses clone with CLONE_NEWUSER (EPERM) but lets threads and fork through; CAP_SYS_ADMIN allows it", () => {
    expect(run(spec(), AUDIT.x86_64, nr64("clone"), [CLONE_NEWUSER])).toBe(errno(EPERM));
    expect(run(spec(), AUDIT.x86_64, nr64("clone"), [CLONE_THREAD_FLAGS])).toBe(ALLOW);
    expect(run(spec(), AUDIT.x86_64, nr64("clone"), [0x11n])).toBe(ALLOW); // fork: SIGCHLD
    expect(run(spec(), AUDIT.i386, nr32("clone"), [CLONE_NEWUSER])).toBe(errno(EPERM));
    const admin = spec([...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]);
    expect(run(admin, AUDIT.x86_64, nr64("clone"), [CLONE_NEWUSER])).toBe(ALLOW);
    expect(run(spec(), AUDIT.x86_64, nr64("unshare"), [CLONE_NEWUSER])).toBe(errno(EPERM));
    expect(run(spec(), AUDIT.x86_64, nr64("unshare"), [0x80n])).toBe(errno(EPERM)); // CLONE_NEWTIME
    expect(run(spec(), AUDIT.x86_64, nr64("unshare"), [0x200n])).toBe(ALLOW); // CLONE_FS
  });

  it("answers clone3 with ENOSYS (glibc falls back to clone) unless CAP_SYS_ADMIN", () => {
    expect(run(spec(), AUDIT.x86_64, nr64("clone3"))).toBe(errno(ENOSYS));
    expect(
      run(spec([...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]), AUDIT.x86_64, nr64("clone3")),
    ).toBe(ALLOW);
  });

  it("refuses known dangerous syscalls with EPERM and unknown numbers with ENOSYS", () => {
    for (const name of [
      "keyctl",
      "add_key",
      "bpf",
      "perf_event_open",
      "userfaultfd",
      "io_uring_setup",
      "kexec_load",
      "mount",
      "open_by_handle_at",
      "ptrace",
    ]) {
      expect(run(spec(), AUDIT.x86_64, nr64(name)), name).toBe(errno(EPERM));
    }
    expect(run(spec(), AUDIT.x86_64, 1000)).toBe(errno(ENOSYS));
    expect(run(spec(), AUDIT.x86_64, 0xfffffff)).toBe(errno(ENOSYS));
    expect(run(spec(), AUDIT.i386, 1000)).toBe(errno(ENOSYS));
    expect(run(spec(), AUDIT.x86_64, nr64("getppid"))).toBe(ALLOW);
  });

  it("follows the capabilities: ptrace with CAP_SYS_PTRACE, bpf with CAP_BPF, syslog with CAP_SYSLOG", () => {
    expect(
      run(spec([...DEFAULT_CAPABILITIES, "CAP_SYS_PTRACE"]), AUDIT.x86_64, nr64("ptrace")),
    ).toBe(ALLOW);
    expect(run(spec([...DEFAULT_CAPABILITIES, "CAP_BPF"]), AUDIT.x86_64, nr64("bpf"))).toBe(ALLOW);
    expect(run(spec([...DEFAULT_CAPABILITIES, "CAP_SYSLOG"]), AUDIT.x86_64, nr64("syslog"))).toBe(
      ALLOW,
    );
    expect(run(spec([]), AUDIT.x86_64, nr64("chroot"))).toBe(errno(EPERM));
    expect(run(spec(), AUDIT.x86_64, nr64("chroot"))).toBe(ALLOW);
  });

  it("refuses the x32 ABI with EPERM and kills a process of an unknown architecture", () => {
    expect(run(spec(), AUDIT.x86_64, 0x40000000 | nr64("getppid"))).toBe(errno(EPERM));
    expect(run(spec(), AUDIT.aarch64, 0)).toBe(KILL_PROCESS);
    expect(run(spec(), 0x12345678, nr64("getppid"))).toBe(KILL_PROCESS);
    const only64 = { ...spec(), architectures: ["SCMP_ARCH_X86_64"] };
    expect(run(only64, AUDIT.i386, nr32("getppid"))).toBe(KILL_PROCESS);
  });

  it("closes the 64-bit hole in Docker's socket rule: AF_ALG with high bits set is refused", () => {
    const socket = nr64("socket");
    expect(run(spec(), AUDIT.x86_64, socket, [2n])).toBe(ALLOW); // AF_INET
    expect(run(spec(), AUDIT.x86_64, socket, [38n])).toBe(errno(EPERM)); // AF_ALG
    expect(run(spec(), AUDIT.x86_64, socket, [40n])).toBe(errno(EPERM)); // AF_VSOCK
    expect(run(spec(), AUDIT.x86_64, socket, [0x100000026n])).toBe(errno(EPERM));
    expect(run(spec(), AUDIT.i386, nr32("socket"), [38n])).toBe(errno(EPERM));
  });

  it("lets personality query and set PER_LINUX, refuses READ_IMPLIES_EXEC", () => {
    const p = nr64("personality");
    expect(run(spec(), AUDIT.x86_64, p, [0xffffffffn])).toBe(ALLOW);
    expect(run(spec(), AUDIT.x86_64, p, [0n])).toBe(ALLOW);
    expect(run(spec(), AUDIT.x86_64, p, [0x400000n])).toBe(errno(EPERM));
  });

  it("applies minKernel conditions", () => {
    const profile: SeccompProfile = {
      defaultAction: "SCMP_ACT_ERRNO",
      architectures: ["SCMP_ARCH_X86_64"],
      syscalls: [{ names: ["getppid"], action: "SCMP_ACT_ALLOW", includes: { minKernel: "5.10" } }],
    };
    const at = (kernel: string) =>
      run(
        resolveProfile(profile, { arch: "x64", capabilities: [], kernel }),
        AUDIT.x86_64,
        nr64("getppid"),
      );
    expect(at("5.10.0-30-amd64")).toBe(ALLOW);
    expect(at("6.1.0")).toBe(ALLOW);
    expect(at("5.4.0")).toBe(errno(EPERM));
    expect(at("4.19.0")).toBe(errno(EPERM));
  });
});

describe("compiler", () => {
  it("compiles for an arm64 host: aarch64 numbers, everything else killed", () => {
    const s = resolveProfile(defaultProfile(), {
      arch: "arm64",
      capabilities: DEFAULT_CAPABILITIES,
      kernel: KERNEL,
    });
    const program = decode(compileFilter(s, "arm64").program);
    const nr = (name: string) => ARCHES.SCMP_ARCH_AARCH64?.syscalls[name] as number;
    expect(runFilter(program, { arch: AUDIT.aarch64, nr: nr("getppid") }).ret).toBe(ALLOW);
    expect(runFilter(program, { arch: AUDIT.aarch64, nr: nr("keyctl") }).ret).toBe(errno(EPERM));
    expect(
      runFilter(program, { arch: AUDIT.aarch64, nr: nr("clone"), args: [CLONE_NEWUSER] }).ret,
    ).toBe(errno(EPERM));
    expect(runFilter(program, { arch: AUDIT.aarch64, nr: 1000 }).ret).toBe(errno(ENOSYS));
    expect(runFilter(program, { arch: AUDIT.x86_64, nr: 0 }).ret).toBe(KILL_PROCESS);
  });

  it("emits JA trampolines for a profile whose search tree is longer than a jump reaches, and still decides right", () => {
    const names = Object.keys(ARCHES.SCMP_ARCH_X86_64?.syscalls ?? {});
    const ops = [
      "SCMP_CMP_EQ",
      "SCMP_CMP_NE",
      "SCMP_CMP_LT",
      "SCMP_CMP_LE",
      "SCMP_CMP_GT",
      "SCMP_CMP_GE",
    ] as const;
    const s: SpecSeccomp = {
      defaultAction: "SCMP_ACT_ERRNO",
      defaultErrnoRet: 38,
      architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
      syscalls: names.flatMap((name, i) => [
        {
          names: [name],
          action: i % 3 === 0 ? "SCMP_ACT_ALLOW" : "SCMP_ACT_LOG",
          args: [
            {
              index: i % 6,
              value: (i * 0x10001) % 64,
              op: ops[i % ops.length] as (typeof ops)[number],
            },
          ],
        },
        { names: [name], action: "SCMP_ACT_ERRNO", errnoRet: 1 + (i % 50) },
      ]),
    };
    const compiled = compileFilter(s, "x64");
    const program = decode(compiled.program);
    checkProgram(program);
    expect(compiled.instructions).toBeGreaterThan(1000);
    expect(program.some((insn) => insn.code === 0x05)).toBe(true); // a JA: a trampoline
    for (const [arch, table] of [
      [AUDIT.x86_64, ARCHES.SCMP_ARCH_X86_64],
      [AUDIT.i386, ARCHES.SCMP_ARCH_X86],
    ] as const) {
      for (const nr of Object.values(table?.syscalls ?? {})) {
        for (const v of [0n, 1n, 31n, 32n, 63n, 0x100000000n]) {
          const args = [v, v, v, v, v, v];
          expect(runFilter(program, { arch, nr, args }).ret).toBe(reference(s, arch, nr, args));
        }
      }
    }
  });

  it("compares 64-bit arguments word by word (EQ/NE/LT/LE/GT/GE/MASKED_EQ around the 2^32 boundary)", () => {
    const ops = [
      "SCMP_CMP_EQ",
      "SCMP_CMP_NE",
      "SCMP_CMP_LT",
      "SCMP_CMP_LE",
      "SCMP_CMP_GT",
      "SCMP_CMP_GE",
      "SCMP_CMP_MASKED_EQ",
    ] as const;
    const values = [0, 1, 0xffffffff, 0x100000000, 0x100000001, 0x1ffffffff, 2 ** 40 + 5];
    const probes = [
      0n,
      1n,
      2n,
      0xffffffffn,
      0x100000000n,
      0x100000001n,
      0x1ffffffffn,
      0x200000000n,
      2n ** 40n + 5n,
      2n ** 64n - 1n,
    ];
    for (const op of ops) {
      for (const value of values) {
        const s: SpecSeccomp = {
          defaultAction: "SCMP_ACT_ERRNO",
          architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
          syscalls: [
            {
              names: ["getppid"],
              action: "SCMP_ACT_ALLOW",
              args: [{ index: 3, value, valueTwo: value % 7, op }],
            },
          ],
        };
        const program = decode(compileFilter(s, "x64").program);
        for (const probe of probes) {
          for (const [arch, nr] of [
            [AUDIT.x86_64, nr64("getppid")],
            [AUDIT.i386, nr32("getppid")],
          ] as const) {
            const args = [0n, 0n, 0n, probe];
            expect(runFilter(program, { arch, nr, args }).ret, `${op} ${value} ${probe}`).toBe(
              reference(s, arch, nr, args),
            );
          }
        }
      }
    }
  });

  it("counts the native syscalls a filter can allow", () => {
    const s: SpecSeccomp = {
      defaultAction: "SCMP_ACT_ERRNO",
      architectures: ["SCMP_ARCH_X86_64"],
      syscalls: [
        { names: ["read", "write", "no_such_syscall"], action: "SCMP_ACT_ALLOW" },
        {
          names: ["socket"],
          action: "SCMP_ACT_ALLOW",
          args: [{ index: 0, value: 1, op: "SCMP_CMP_EQ" }],
        },
        { names: ["open"], action: "SCMP_ACT_ERRNO" },
      ],
    };
    expect(compileFilter(s, "x64").allowed).toBe(3);
  });
});
