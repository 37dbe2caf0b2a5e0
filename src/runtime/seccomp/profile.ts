/**
 * PLACEHOLDER for sec-bpf's module (replaced at merge): the contract's names
 * only, so the wiring compiles and runs. Not the real profile or checks.
 */
import { MiniboxError } from "../../errors.js";

export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

export interface SeccompFilter {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}

export interface SeccompRule {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: SeccompArg[] | null;
  includes?: SeccompFilter;
  excludes?: SeccompFilter;
}

export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  archMap?: { architecture: string; subArchitectures?: string[] | null }[] | null;
  architectures?: string[] | null;
  syscalls?: SeccompRule[] | null;
}

export interface SpecSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures: string[];
  syscalls: { names: string[]; action: string; errnoRet?: number; args?: SeccompArg[] }[];
}

export function defaultProfile(): SeccompProfile {
  return {
    defaultAction: "SCMP_ACT_ERRNO",
    defaultErrnoRet: 38,
    archMap: [{ architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86"] }],
    syscalls: [{ names: ["read", "write", "exit", "exit_group"], action: "SCMP_ACT_ALLOW" }],
  };
}

export function parseProfile(text: string, source: string): SeccompProfile {
  let p: unknown;
  try {
    p = JSON.parse(text);
  } catch (err) {
    throw new MiniboxError(`seccomp profile ${source}: ${(err as Error).message}`);
  }
  if (
    typeof p !== "object" ||
    p === null ||
    typeof (p as SeccompProfile).defaultAction !== "string"
  ) {
    throw new MiniboxError(`seccomp profile ${source}: defaultAction: missing`);
  }
  return p as SeccompProfile;
}

export function resolveProfile(
  p: SeccompProfile,
  _t: { arch: string; capabilities: readonly string[]; kernel: string },
): SpecSeccomp {
  return {
    defaultAction: p.defaultAction,
    ...(p.defaultErrnoRet !== undefined ? { defaultErrnoRet: p.defaultErrnoRet } : {}),
    architectures: ["SCMP_ARCH_X86_64"],
    syscalls: (p.syscalls ?? []).map((r) => ({
      names: r.names,
      action: r.action,
      ...(r.errnoRet !== undefined ? { errnoRet: r.errnoRet } : {}),
      ...(r.args ? { args: r.args } : {}),
    })),
  };
}
