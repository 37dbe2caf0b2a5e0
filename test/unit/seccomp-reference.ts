// The straightforward reading of an OCI seccomp spec the compiled filter is
// checked against: find the syscall's name, walk the rules in order, the
// first whose arguments all match decides, else the default action.
import { actionValue } from "../../src/runtime/seccomp/compile.js";
import type { SeccompArg, SpecSeccomp } from "../../src/runtime/seccomp/profile.js";
import { ARCHES } from "../../src/runtime/seccomp/tables.js";

export const AUDIT = { x86_64: 0xc000003e, i386: 0x40000003, aarch64: 0xc00000b7 };
export const ALLOW = 0x7fff0000;
export const KILL_PROCESS = 0x80000000;
export const errno = (n: number) => 0x00050000 | n;

function argMatches(a: SeccompArg, raw: bigint, bits: 32 | 64): boolean {
  const arg = bits === 32 ? raw & 0xffffffffn : raw;
  const v = BigInt(a.value);
  switch (a.op) {
    case "SCMP_CMP_EQ":
      return arg === v;
    case "SCMP_CMP_NE":
      return arg !== v;
    case "SCMP_CMP_LT":
      return arg < v;
    case "SCMP_CMP_LE":
      return arg <= v;
    case "SCMP_CMP_GT":
      return arg > v;
    case "SCMP_CMP_GE":
      return arg >= v;
    case "SCMP_CMP_MASKED_EQ":
      return (arg & v) === BigInt(a.valueTwo ?? 0);
  }
}

const byNumber = new Map<string, Map<number, string>>();

function names(scmp: string): Map<number, string> {
  let map = byNumber.get(scmp);
  if (!map) {
    map = new Map(Object.entries(ARCHES[scmp]?.syscalls ?? {}).map(([n, nr]) => [nr, n]));
    byNumber.set(scmp, map);
  }
  return map;
}

/** What the spec says for (arch, nr, args) on an x86_64 host. */
export function reference(
  spec: SpecSeccomp,
  arch: number,
  nr: number,
  args: readonly bigint[],
): number {
  const scmp =
    arch === AUDIT.x86_64 ? "SCMP_ARCH_X86_64" : arch === AUDIT.i386 ? "SCMP_ARCH_X86" : "";
  if (!scmp || !spec.architectures.includes(scmp)) return KILL_PROCESS;
  if (scmp === "SCMP_ARCH_X86_64" && nr & 0x40000000) return errno(1);
  const name = names(scmp).get(nr);
  const bits = scmp === "SCMP_ARCH_X86" ? 32 : 64;
  for (const rule of spec.syscalls) {
    if (name === undefined || !rule.names.includes(name)) continue;
    if ((rule.args ?? []).every((a) => argMatches(a, args[a.index] ?? 0n, bits))) {
      return actionValue(rule.action, rule.errnoRet);
    }
  }
  return actionValue(spec.defaultAction, spec.defaultErrnoRet);
}
