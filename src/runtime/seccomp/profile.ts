/**
 * Seccomp profiles: Docker's and podman's JSON format (`SeccompProfile`, with
 * `archMap` and capability/architecture/kernel conditions) and the OCI
 * runtime-spec `linux.seccomp` it resolves to for one container
 * (`SpecSeccomp`: no conditions left). `--security-opt seccomp=FILE` takes
 * either form, as Docker does; minibox's own profile is default.json
 * (default-profile.ts, kept apart: a run whose filter is cached never loads it).
 */
import { MiniboxError } from "../../errors.js";
import { validateProfile } from "./validate.js";

export type SeccompAction =
  | "SCMP_ACT_KILL"
  | "SCMP_ACT_KILL_THREAD"
  | "SCMP_ACT_KILL_PROCESS"
  | "SCMP_ACT_TRAP"
  | "SCMP_ACT_ERRNO"
  | "SCMP_ACT_TRACE"
  | "SCMP_ACT_LOG"
  | "SCMP_ACT_ALLOW";

export type SeccompOp =
  | "SCMP_CMP_NE"
  | "SCMP_CMP_LT"
  | "SCMP_CMP_LE"
  | "SCMP_CMP_EQ"
  | "SCMP_CMP_GE"
  | "SCMP_CMP_GT"
  | "SCMP_CMP_MASKED_EQ";

/** One argument condition: `args[index] op value` (MASKED_EQ: `(arg & value) == valueTwo`). */
export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: SeccompOp;
}

/** When a rule applies: every listed cap present, host arch listed, kernel ≥ minKernel. */
export interface SeccompFilter {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}

export interface SeccompRule {
  names: string[];
  action: SeccompAction;
  errnoRet?: number;
  args?: SeccompArg[];
  includes?: SeccompFilter;
  excludes?: SeccompFilter;
  comment?: string;
}

export interface SeccompArchMap {
  architecture: string;
  subArchitectures: string[];
}

/** Docker's and podman's profile (archMap form) or an OCI one (architectures). */
export interface SeccompProfile {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  archMap?: SeccompArchMap[];
  architectures?: string[];
  syscalls: SeccompRule[];
}

/** The OCI runtime-spec `linux.seccomp`: what one container gets. */
export interface SpecSeccomp {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  architectures: string[];
  syscalls: { names: string[]; action: SeccompAction; errnoRet?: number; args?: SeccompArg[] }[];
}

/** What a profile is resolved against. */
export interface SeccompTarget {
  /** process.arch of the host. */
  arch: string;
  /** CAP_* names: the container's bounding set (Docker decides on it too). */
  capabilities: readonly string[];
  /** os.release(). */
  kernel: string;
}

/** Parse and check a profile's text; `source` names it in errors (a path). */
export function parseProfile(text: string, source: string): SeccompProfile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new MiniboxError(`seccomp profile ${source}: not valid JSON: ${(err as Error).message}`);
  }
  return validateProfile(data, `seccomp profile ${source}`);
}

/** Docker's names for the host architecture (Go's GOARCH), used by `arches` conditions. */
const GOARCH: Record<string, string> = { x64: "amd64", arm64: "arm64", ia32: "386", arm: "arm" };

/** The host's architecture as libseccomp names it in archMap. */
const NATIVE_SCMP: Record<string, string> = {
  x64: "SCMP_ARCH_X86_64",
  arm64: "SCMP_ARCH_AARCH64",
  ia32: "SCMP_ARCH_X86",
  arm: "SCMP_ARCH_ARM",
};

/** The architectures the filter covers: the host's archMap entry, native first. */
function architectures(p: SeccompProfile, arch: string): string[] {
  if (!p.archMap) return [...(p.architectures ?? [])];
  const native = NATIVE_SCMP[arch];
  const entry = p.archMap.find((a) => a.architecture === native);
  return entry ? [entry.architecture, ...entry.subArchitectures] : [];
}

/** "6.18.44-fc-v1045" ≥ "4.8"? Major and minor only, as Docker compares. */
export function kernelAtLeast(kernel: string, min: string): boolean {
  const [a = 0, b = 0] = kernel.split(/[.-]/).map((n) => Number.parseInt(n, 10) || 0);
  const [x = 0, y = 0] = min.split(".").map((n) => Number.parseInt(n, 10) || 0);
  return a !== x ? a > x : b >= y;
}

/** Does a rule apply to this container? Docker's reading of includes/excludes. */
export function ruleApplies(rule: SeccompRule, t: SeccompTarget): boolean {
  const goArch = GOARCH[t.arch] ?? t.arch;
  const has = (cap: string) => t.capabilities.includes(cap);
  const ex = rule.excludes ?? {};
  if (ex.arches?.includes(goArch)) return false;
  if (ex.caps?.some(has)) return false;
  if (ex.minKernel && kernelAtLeast(t.kernel, ex.minKernel)) return false;
  const inc = rule.includes ?? {};
  if (inc.arches?.length && !inc.arches.includes(goArch)) return false;
  if (inc.caps && !inc.caps.every(has)) return false;
  if (inc.minKernel && !kernelAtLeast(t.kernel, inc.minKernel)) return false;
  return true;
}

/** The OCI `linux.seccomp` for one container: conditions applied, host arches only. */
export function resolveProfile(p: SeccompProfile, t: SeccompTarget): SpecSeccomp {
  const syscalls = p.syscalls
    .filter((rule) => ruleApplies(rule, t))
    .map(({ names, action, errnoRet, args }) => ({
      names: [...names],
      action,
      ...(errnoRet !== undefined ? { errnoRet } : {}),
      ...(args?.length ? { args: args.map((a) => ({ ...a })) } : {}),
    }));
  return {
    defaultAction: p.defaultAction,
    ...(p.defaultErrnoRet !== undefined ? { defaultErrnoRet: p.defaultErrnoRet } : {}),
    architectures: architectures(p, t.arch),
    syscalls,
  };
}
