/**
 * Checking a seccomp profile read from JSON, field by field: a mistake in a
 * security profile must stop the run with the field's name, not turn into a
 * filter that allows or refuses something else.
 */
import { MiniboxError } from "../../errors.js";
import type {
  SeccompAction,
  SeccompArchMap,
  SeccompArg,
  SeccompFilter,
  SeccompOp,
  SeccompProfile,
  SeccompRule,
} from "./profile.js";

export const ACTIONS: readonly SeccompAction[] = [
  "SCMP_ACT_KILL",
  "SCMP_ACT_KILL_THREAD",
  "SCMP_ACT_KILL_PROCESS",
  "SCMP_ACT_TRAP",
  "SCMP_ACT_ERRNO",
  "SCMP_ACT_TRACE",
  "SCMP_ACT_LOG",
  "SCMP_ACT_ALLOW",
];

export const OPS: readonly SeccompOp[] = [
  "SCMP_CMP_NE",
  "SCMP_CMP_LT",
  "SCMP_CMP_LE",
  "SCMP_CMP_EQ",
  "SCMP_CMP_GE",
  "SCMP_CMP_GT",
  "SCMP_CMP_MASKED_EQ",
];

/** libseccomp's architecture names (SCMP_ARCH_*), so that a typo is caught. */
const ARCHES = new Set(
  "X86 X86_64 X32 ARM AARCH64 MIPS MIPS64 MIPS64N32 MIPSEL MIPSEL64 MIPSEL64N32 PPC PPC64 PPC64LE S390 S390X PARISC PARISC64 RISCV64 LOONGARCH64 M68K SH SHEB"
    .split(" ")
    .map((a) => `SCMP_ARCH_${a}`),
);

type Obj = Record<string, unknown>;

function fail(where: string, what: string): never {
  throw new MiniboxError(
    `${where}: ${what}`,
    "fix the profile or use --security-opt seccomp=unconfined",
  );
}

function object(v: unknown, where: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail(where, "must be an object");
  return v as Obj;
}

function strings(v: unknown, where: string): string[] {
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) {
    fail(where, "must be an array of strings");
  }
  return [...(v as string[])];
}

/** An integer in [min, max]; JSON numbers above 2^53 are already rounded, as in Docker's Go. */
function integer(v: unknown, where: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    fail(where, `must be an integer from ${min} to ${max}, not ${JSON.stringify(v)}`);
  }
  return v;
}

function action(v: unknown, where: string): SeccompAction {
  if (v === "SCMP_ACT_NOTIFY") fail(where, "SCMP_ACT_NOTIFY is not supported by minibox");
  if (!ACTIONS.includes(v as SeccompAction)) fail(where, `unknown action ${JSON.stringify(v)}`);
  return v as SeccompAction;
}

/** errno values are 1..4095 for the kernel (the return value's low 12 bits make it an error). */
function errno(v: unknown, where: string): number | undefined {
  return v === undefined || v === null ? undefined : integer(v, where, 0, 4095);
}

function arg(v: unknown, where: string): SeccompArg {
  const o = object(v, where);
  if (!OPS.includes(o.op as SeccompOp))
    fail(`${where}.op`, `unknown operator ${JSON.stringify(o.op)}`);
  const out: SeccompArg = {
    index: integer(o.index, `${where}.index`, 0, 5),
    value: integer(o.value, `${where}.value`, 0, 2 ** 64 - 1),
    op: o.op as SeccompOp,
  };
  if (o.valueTwo !== undefined && o.valueTwo !== null) {
    out.valueTwo = integer(o.valueTwo, `${where}.valueTwo`, 0, 2 ** 64 - 1);
  }
  return out;
}

function filter(v: unknown, where: string): SeccompFilter | undefined {
  if (v === undefined || v === null) return undefined;
  const o = object(v, where);
  const out: SeccompFilter = {};
  if (o.caps != null) out.caps = strings(o.caps, `${where}.caps`);
  if (o.arches != null) out.arches = strings(o.arches, `${where}.arches`);
  if (o.minKernel != null && o.minKernel !== "") {
    if (typeof o.minKernel !== "string" || !/^\d+\.\d+(\.\d+)?$/.test(o.minKernel)) {
      fail(
        `${where}.minKernel`,
        `must be a kernel version such as "4.8", not ${JSON.stringify(o.minKernel)}`,
      );
    }
    out.minKernel = o.minKernel;
  }
  return out;
}

function names(o: Obj, where: string): string[] {
  const list = o.names == null ? [] : strings(o.names, `${where}.names`);
  // Docker's older profiles name one syscall with "name".
  if (typeof o.name === "string" && o.name !== "") list.push(o.name);
  else if (o.name != null && o.name !== "") fail(`${where}.name`, "must be a string");
  if (list.length === 0) fail(`${where}.names`, "names no syscall");
  return list;
}

function rule(v: unknown, where: string): SeccompRule {
  const o = object(v, where);
  const out: SeccompRule = { names: names(o, where), action: action(o.action, `${where}.action`) };
  const ret = errno(o.errnoRet, `${where}.errnoRet`);
  if (ret !== undefined) out.errnoRet = ret;
  if (o.args != null) {
    if (!Array.isArray(o.args)) fail(`${where}.args`, "must be an array");
    if (o.args.length > 0) out.args = o.args.map((a, i) => arg(a, `${where}.args[${i}]`));
  }
  const includes = filter(o.includes, `${where}.includes`);
  const excludes = filter(o.excludes, `${where}.excludes`);
  if (includes) out.includes = includes;
  if (excludes) out.excludes = excludes;
  return out;
}

function architecture(v: unknown, where: string): string {
  if (typeof v !== "string" || !ARCHES.has(v))
    fail(where, `unknown architecture ${JSON.stringify(v)}`);
  return v;
}

function archMap(v: unknown, where: string): SeccompArchMap[] {
  if (!Array.isArray(v)) fail(where, "must be an array");
  return v.map((entry, i) => {
    const o = object(entry, `${where}[${i}]`);
    const subs =
      o.subArchitectures == null
        ? []
        : strings(o.subArchitectures, `${where}[${i}].subArchitectures`);
    return {
      architecture: architecture(o.architecture, `${where}[${i}].architecture`),
      subArchitectures: subs.map((s, j) =>
        architecture(s, `${where}[${i}].subArchitectures[${j}]`),
      ),
    };
  });
}

/** The profile in `data`, checked; `where` prefixes every error ("seccomp profile /x.json"). */
export function validateProfile(data: unknown, where: string): SeccompProfile {
  const o = object(data, where);
  const out: SeccompProfile = {
    defaultAction: action(o.defaultAction, `${where}: defaultAction`),
    syscalls: [],
  };
  const ret = errno(o.defaultErrnoRet, `${where}: defaultErrnoRet`);
  if (ret !== undefined) out.defaultErrnoRet = ret;
  const hasArchMap = Array.isArray(o.archMap) && o.archMap.length > 0;
  const hasArches = Array.isArray(o.architectures) && o.architectures.length > 0;
  if (hasArchMap && hasArches) {
    fail(
      where,
      "both 'architectures' and 'archMap' are specified; use either 'architectures' or 'archMap'",
    );
  }
  if (o.archMap != null) out.archMap = archMap(o.archMap, `${where}: archMap`);
  if (o.architectures != null) {
    const list = strings(o.architectures, `${where}: architectures`);
    out.architectures = list.map((a, i) => architecture(a, `${where}: architectures[${i}]`));
  }
  if (o.syscalls != null) {
    if (!Array.isArray(o.syscalls)) fail(`${where}: syscalls`, "must be an array");
    out.syscalls = o.syscalls.map((r, i) => rule(r, `${where}: syscalls[${i}]`));
  }
  return out;
}
