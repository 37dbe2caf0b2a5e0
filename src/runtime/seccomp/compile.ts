/** PLACEHOLDER for sec-bpf's compiler (replaced at merge): an allow-all program. */
import type { SpecSeccomp } from "./profile.js";

export interface CompiledFilter {
  /** struct sock_filter[], 8 bytes each, little-endian. */
  program: Uint8Array;
  instructions: number;
  allowed: number;
}

export function compileFilter(s: SpecSeccomp, _arch: string): CompiledFilter {
  // BPF_RET|BPF_K, SECCOMP_RET_ALLOW.
  const program = Uint8Array.from([0x06, 0, 0, 0, 0x00, 0x00, 0xff, 0x7f]);
  const allowed = s.syscalls.filter((r) => r.action === "SCMP_ACT_ALLOW").flatMap((r) => r.names);
  return { program, instructions: 1, allowed: allowed.length };
}
