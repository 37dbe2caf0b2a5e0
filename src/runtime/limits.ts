/** A container's resource limits: read back from its spec, shown to users, inherited from the host. */
import { readFileSync } from "node:fs";
import type { CgroupLimits } from "./cgroups/index.js";
import type { Spec } from "./spec.js";

/** The cgroup limits a container was created with, read back from its spec (`start`). */
export function limitsFromSpec(spec: Spec): CgroupLimits {
  const r = spec.linux.resources;
  return {
    memory: r.memory?.limit,
    memorySwap: r.memory?.swap,
    cpuQuota: r.cpu?.quota,
    cpuPeriod: r.cpu?.period,
    cpuShares: r.cpu?.shares,
    pidsLimit: r.pids?.limit,
    devices: r.devices,
  };
}

/** The memory limit as the OOM message gives it ("64 MiB"), or "" without one. */
export function humanLimit(spec: Spec): string {
  const limit = spec.linux.resources.memory?.limit;
  return limit ? `${Math.round(limit / 1024 / 1024)} MiB` : "";
}

/** minibox's own hard RLIMIT_NOFILE: a container's limit may not exceed it. */
export function nofileHardLimit(): number {
  // /proc/self/limits is the only way Node can read rlimits.
  try {
    const text = readFileSync("/proc/self/limits", "utf8");
    const line = text.split("\n").find((l) => l.startsWith("Max open files"));
    const hard = line?.split(/\s{2,}/)[2];
    return hard === "unlimited" || !hard ? 1048576 : Number(hard);
  } catch {
    return 1024;
  }
}

/** /proc/self/limits rows → Docker's --ulimit names. */
const PROC_LIMIT_NAMES: Readonly<Record<string, string>> = {
  "Max cpu time": "cpu",
  "Max file size": "fsize",
  "Max data size": "data",
  "Max stack size": "stack",
  "Max core file size": "core",
  "Max resident set": "rss",
  "Max processes": "nproc",
  "Max open files": "nofile",
  "Max locked memory": "memlock",
  "Max file locks": "locks",
  "Max pending signals": "sigpending",
  "Max msgqueue size": "msgqueue",
  "Max nice priority": "nice",
  "Max realtime priority": "rtprio",
  "Max realtime timeout": "rttime",
};

/** The hard limits in /proc/<pid>/limits text, by Docker name; "unlimited" → -1. */
export function parseHardLimits(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const [label = "", , hard] = line.split(/\s{2,}/);
    const name = PROC_LIMIT_NAMES[label];
    if (name === undefined || hard === undefined) continue;
    const n = hard === "unlimited" ? -1 : Number(hard);
    if (Number.isSafeInteger(n)) out[name] = n;
  }
  return out;
}

/** minibox's own hard limits (what a container in a user namespace cannot go above). */
export function callerHardLimits(): Record<string, number> {
  try {
    return parseHardLimits(readFileSync("/proc/self/limits", "utf8"));
  } catch {
    return {};
  }
}
