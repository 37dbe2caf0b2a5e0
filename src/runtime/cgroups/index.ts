/**
 * cgroups: CPU, memory and pids limits for a container, through cgroupfs.
 *
 * One skeleton (cgroups/container-cgroup.ts) with two drivers
 * (cgroups/v1.ts, cgroups/v2.ts) for what differs; which driver runs is
 * decided by looking at the machine (cgroups/detect.ts): v2 when
 * /sys/fs/cgroup is cgroup2 (or a hybrid host's unified mount has the
 * controllers), else v1. Both turn limits into files with pure functions
 * (v1Files, v2Files), so `--trace` and the tests see exactly what is written.
 */
import { availableParallelism } from "node:os";
import { MiniboxError } from "../../errors.js";
import {
  type Cgroup,
  type CgroupLimits,
  type CgroupOptions,
  checkId,
  DEFAULT_CPU_PERIOD,
  neededControllers,
  validateLimits,
} from "./common.js";
import { type CgroupDriver, createWith, openWith } from "./container-cgroup.js";
import { detectCgroupVersion } from "./detect.js";
import { v1Driver } from "./v1.js";
import { v2Driver } from "./v2.js";

export type {
  BlkioDeviceLimit,
  Cgroup,
  CgroupLimits,
  CgroupOptions,
  CgroupStats,
  FileValues,
} from "./common.js";
export { BLKIO_THROTTLE_FILES, formatBytes, MIN_MEMORY } from "./common.js";
export { detectCgroupVersion } from "./detect.js";
export { v1BlkioFiles, v1Files, v1Paths } from "./v1.js";
export { sharesToWeight, v2Files, v2Paths, v2Unsupported } from "./v2.js";

/**
 * Create the container's cgroup(s) and write the limits. Throws MiniboxError
 * with a clear message, and removes whatever it created, if anything fails.
 */
export async function createCgroup(
  id: string,
  limits: CgroupLimits,
  options: CgroupOptions = {},
): Promise<Cgroup> {
  checkId(id);
  validateLimits(limits);
  // v1: a blkio directory only for the containers whose limits need one.
  const blkio = options.blkio || neededControllers(limits).includes("blkio");
  return createWith(driverFor(id, { ...options, blkio }), id, limits, options);
}

/** Reopen an existing container cgroup (stats or cleanup after minibox died); undefined when none exists. */
export function openCgroup(id: string, options: CgroupOptions = {}): Cgroup | undefined {
  checkId(id);
  return openWith(driverFor(id, options), options);
}

function driverFor(id: string, options: CgroupOptions): CgroupDriver {
  return detectCgroupVersion(options.fsRoot) === 2 ? v2Driver(id, options) : v1Driver(id, options);
}

const UNIT: Record<string, number> = { "": 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/**
 * Docker-style sizes: "80m" → 83886080, "1g", "512k", "100" (bytes), "1.5g",
 * also "80mb"/"80MiB". "-1" is accepted for --memory-swap only (unlimited).
 */
export function parseBytes(text: string, flag: string): number {
  const name = flag.startsWith("-") ? flag : `--${flag}`;
  const trimmed = text.trim();
  if (trimmed === "-1" && name === "--memory-swap") return -1;
  const m = /^(\d+(?:\.\d+)?) ?(?:([kmg])i?)?(b)?$/i.exec(trimmed);
  const bad = () =>
    new MiniboxError(
      `invalid ${name} value "${text}": use a number with an optional unit b, k, m or g`,
    );
  if (!m) throw bad();
  const unit = (m[2] ?? (m[3] ? "b" : "")).toLowerCase();
  const bytes = Math.floor(Number(m[1]) * (UNIT[unit] as number));
  if (!Number.isSafeInteger(bytes)) {
    throw new MiniboxError(`invalid ${name} value "${text}": too large`);
  }
  return bytes;
}

/** "0.5" → { cpuQuota: 50000, cpuPeriod: 100000 }, within 0.01 … number of CPUs. */
export function parseCpus(text: string): { cpuQuota: number; cpuPeriod: number } {
  const trimmed = text.trim();
  if (!/^-?(?:\d+(?:\.\d*)?|\.\d+)$/.test(trimmed)) {
    throw new MiniboxError(
      `invalid --cpus value "${text}": use a number of CPUs such as 0.5 or 1.5`,
    );
  }
  const cpus = Number(trimmed);
  const n = availableParallelism();
  const cpuQuota = Math.round(cpus * DEFAULT_CPU_PERIOD);
  if (cpuQuota < 1000 || cpus > n) {
    throw new MiniboxError(
      `invalid --cpus value "${text}": range of CPUs is from 0.01 to ${n}.00, as there ${
        n === 1 ? "is only 1 CPU" : `are only ${n} CPUs`
      } available`,
    );
  }
  return { cpuQuota, cpuPeriod: DEFAULT_CPU_PERIOD };
}
