/**
 * `update`'s input as the cgroup module's limits: runc's flags, or a
 * LinuxResources JSON (`--resources FILE|-`, containerd's shim sends it on
 * stdin) — as in runc, the JSON replaces the flags. Only what minibox's
 * cgroup drivers write (memory, swap, reservation, CPU quota/period/shares,
 * cpuset cpus/mems, pids) is accepted; a non-zero value of any other field is refused by name rather
 * than silently not applied.
 */
import { MiniboxError } from "../../errors.js";
import { type CgroupLimits, parseBytes } from "../cgroups/index.js";

export interface UpdateFlags {
  memory?: string;
  memorySwap?: string;
  cpuQuota?: string;
  cpuPeriod?: string;
  cpuShare?: string;
  cpuShares?: string;
  pidsLimit?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  memoryReservation?: string;
}

function integer(text: string, flag: string): number {
  const n = Number(text.trim());
  if (text.trim() === "" || !Number.isSafeInteger(n)) {
    throw new MiniboxError(`invalid value ${JSON.stringify(text)} for flag --${flag}`);
  }
  return n;
}

/** The limits runc's update flags ask for (absent flags: unchanged). */
export function limitsFromFlags(flags: UpdateFlags): CgroupLimits {
  const out: CgroupLimits = {};
  if (flags.memory !== undefined) out.memory = parseBytes(flags.memory, "memory");
  if (flags.memorySwap !== undefined) out.memorySwap = parseBytes(flags.memorySwap, "memory-swap");
  if (flags.cpuQuota !== undefined) out.cpuQuota = integer(flags.cpuQuota, "cpu-quota");
  if (flags.cpuPeriod !== undefined) out.cpuPeriod = integer(flags.cpuPeriod, "cpu-period");
  const shares = flags.cpuShare ?? flags.cpuShares;
  if (shares !== undefined) out.cpuShares = integer(shares, "cpu-share");
  if (flags.pidsLimit !== undefined) out.pidsLimit = integer(flags.pidsLimit, "pids-limit");
  if (flags.cpusetCpus !== undefined) out.cpusetCpus = flags.cpusetCpus;
  if (flags.cpusetMems !== undefined) out.cpusetMems = flags.cpusetMems;
  if (flags.memoryReservation !== undefined) {
    out.memoryReservation = parseBytes(flags.memoryReservation, "memory-reservation");
  }
  return out;
}

type Json = Record<string, unknown>;

function section(r: Json, name: string): Json {
  const v = r[name];
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) {
    throw new MiniboxError(`resources: ${name}: must be an object`);
  }
  return v as Json;
}

function num(s: Json, where: string, key: string): number | undefined {
  const v = s[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v)) {
    throw new MiniboxError(`resources: ${where}.${key}: must be an integer`);
  }
  return v;
}

function stringField(s: Json, where: string, key: string): string | undefined {
  const v = s[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new MiniboxError(`resources: ${where}.${key}: must be a string`);
  return v;
}

/** Fields runc's update takes that minibox's drivers do not write: refused when set. */
const UNSUPPORTED: Array<[string, string]> = [
  ["memory", "kernel"],
  ["memory", "kernelTCP"],
  ["cpu", "realtimeRuntime"],
  ["cpu", "realtimePeriod"],
  ["blockIO", "weight"],
];

/** A LinuxResources JSON (the runtime spec's linux.resources) as limits. */
export function limitsFromResources(text: string): CgroupLimits {
  let r: unknown;
  try {
    r = JSON.parse(text);
  } catch (err) {
    throw new MiniboxError(`resources: not valid JSON (${(err as Error).message})`);
  }
  if (typeof r !== "object" || r === null || Array.isArray(r)) {
    throw new MiniboxError("resources: must be a JSON object (linux.resources)");
  }
  const res = r as Json;
  for (const [name, key] of UNSUPPORTED) {
    const v = section(res, name)[key];
    if (v !== undefined && v !== null && v !== 0 && v !== "") {
      throw new MiniboxError(
        `resources: ${name}.${key} is not supported by minibox-runc's update (memory, swap, reservation, cpu shares/quota/period, cpus, mems and pids are)`,
      );
    }
  }
  const memory = section(res, "memory");
  const cpu = section(res, "cpu");
  const pids = section(res, "pids");
  const out: CgroupLimits = {};
  const set = <K extends keyof CgroupLimits>(k: K, v: CgroupLimits[K] | undefined) => {
    // 0 means "unchanged" in runc's update format.
    if (v !== undefined && v !== 0) out[k] = v;
  };
  set("memory", num(memory, "memory", "limit"));
  set("memorySwap", num(memory, "memory", "swap"));
  set("cpuShares", num(cpu, "cpu", "shares"));
  set("cpuQuota", num(cpu, "cpu", "quota"));
  set("cpuPeriod", num(cpu, "cpu", "period"));
  set("pidsLimit", num(pids, "pids", "limit"));
  set("memoryReservation", num(memory, "memory", "reservation"));
  // "" means unchanged, as 0 does for the numbers.
  set("cpusetCpus", stringField(cpu, "cpu", "cpus") || undefined);
  set("cpusetMems", stringField(cpu, "cpu", "mems") || undefined);
  return out;
}
