/**
 * What both cgroup drivers share: the public types, validation of limits,
 * and the few cgroupfs file operations (each one traced, each failure turned
 * into a MiniboxError that says which file and which value).
 */
import {
  closeSync,
  existsSync,
  constants as fsConstants,
  mkdirSync,
  openSync,
  readFileSync,
  rmdirSync,
  writeSync,
} from "node:fs";
import { totalmem } from "node:os";
import { MiniboxError } from "../../errors.js";
import type { SpecDeviceCgroup } from "../devices.js";

export interface CgroupLimits {
  /** Bytes (--memory). 0 or undefined = unlimited. */
  memory?: number;
  /** Bytes, memory+swap total like Docker (--memory-swap; -1 = unlimited swap; 0 = unset). */
  memorySwap?: number;
  /** Microseconds per period (--cpus 0.5 → 50000 with period 100000). */
  cpuQuota?: number;
  /** Microseconds, default 100000. */
  cpuPeriod?: number;
  /** --cpu-shares (v1 cpu.shares; on v2 converted to cpu.weight like runc). */
  cpuShares?: number;
  /** --pids-limit (0 or negative = unlimited). */
  pidsLimit?: number;
  /** The device cgroup's rules (the spec's linux.resources.devices); absent: no device cgroup. */
  devices?: SpecDeviceCgroup[];
  /** cpuset.cpus, a CPU list such as "0-2,4" (--cpuset-cpus). */
  cpusetCpus?: string;
  /** cpuset.mems, a memory node list such as "0" (--cpuset-mems). */
  cpusetMems?: string;
  /** Bytes, the soft limit (--memory-reservation: v1 memory.soft_limit_in_bytes, v2 memory.low). */
  memoryReservation?: number;
  /** 0–100 (v1 memory.swappiness; cgroup v2 has no such setting). */
  memorySwappiness?: number;
  /** v1 memory.oom_control = 1 (cgroup v2 cannot turn the OOM killer off). */
  disableOomKiller?: boolean;
  /** blkio (v1): the weight, 10–1000 (blkio.weight, or blkio.bfq.weight where only BFQ has one). */
  blkioWeight?: number;
  /** blkio (v1): per-device weights and throttles, one write each. */
  blkioDevices?: BlkioDeviceLimit[];
}

/** One device's line in a v1 blkio file ("major:minor value"). */
export interface BlkioDeviceLimit {
  /** The file's name after "blkio." (weight_device, throttle.read_bps_device, …). */
  file: BlkioDeviceFile;
  major: number;
  minor: number;
  value: number;
}

export const BLKIO_THROTTLE_FILES = [
  "throttle.read_bps_device",
  "throttle.write_bps_device",
  "throttle.read_iops_device",
  "throttle.write_iops_device",
] as const;
export type BlkioDeviceFile = "weight_device" | (typeof BLKIO_THROTTLE_FILES)[number];

export interface CgroupStats {
  /** Bytes in use, without inactive page cache (what `docker stats` shows). */
  memoryUsage: number;
  /** The memory limit in bytes; the host's memory when unlimited. */
  memoryLimit: number;
  /** CPU time used by every process that was ever in the cgroup, in ns. */
  cpuUsageNs: number;
  /** Tasks (threads) in the cgroup now. */
  pids: number;
}

export interface Cgroup {
  version: 1 | 2;
  /** Directories created, one per hierarchy (v1) or one (v2). */
  dirs: string[];
  /** The cgroup.procs files a new process must be written into (write the PID to each, in order) before it runs user code. */
  procsFiles: string[];
  /** Was a process in it killed by the OOM killer? (ask before destroy()) */
  oomKilled(): boolean;
  stats(): CgroupStats;
  /** CPU time used so far (ns): what the first of stats' two readings needs, without the memory files. */
  cpuUsageNs(): number;
  /** The directories above the container's made for it, deepest first (removed by destroy() when empty). */
  createdAbove(): string[];
  /** LIMITS as [path, value] writes into this cgroup, in the order creating it writes them. */
  limitWrites(limits: CgroupLimits): Array<[path: string, value: string]>;
  /** Kill what's left, wait until empty (bounded, ~2 s), then rmdir every dir created, deepest first. Idempotent. */
  destroy(): Promise<void>;
}

export interface CgroupOptions {
  /** Override the parent: --cgroup-parent (absolute within each hierarchy, e.g. "/mygroup"). */
  parent?: string;
  /** Called with one line per kernel-visible step, for --trace. */
  trace?: (line: string) => void;
  /** cgroupfs mount root, default "/sys/fs/cgroup". */
  fsRoot?: string;
  /**
   * v1: a directory in the freezer hierarchy too (minibox-runc's pause and
   * resume; `minibox run` has no use for it). v2 freezes any cgroup.
   */
  freezer?: boolean;
  /** v1: a directory in the blkio hierarchy too (only for limits that need one). */
  blkio?: boolean;
}

/** Ordered [file, value] writes into a container's cgroup directory. */
export type FileValues = Array<[file: string, value: string]>;

export const DEFAULT_FS_ROOT = "/sys/fs/cgroup";
export const DEFAULT_CPU_PERIOD = 100_000;
/** Docker's minimum for --memory: below it a container's first process cannot even start. */
export const MIN_MEMORY = 6 * 1024 * 1024;
/** Bound for killing and waiting in destroy(). */
export const DESTROY_TIMEOUT_MS = 2_000;

const KIB = 1024;
const UNITS: Array<[string, number]> = [
  ["g", KIB ** 3],
  ["m", KIB ** 2],
  ["k", KIB],
];

/** 83886080 → "80m", 1024 → "1k", 1000 → "1000": how a user would have typed it. */
export function formatBytes(n: number): string {
  for (const [unit, size] of UNITS) {
    if (n >= size && n % size === 0) return `${n / size}${unit}`;
  }
  return String(n);
}

function checkInteger(value: number | undefined, what: string): void {
  if (value !== undefined && !Number.isSafeInteger(value)) {
    throw new MiniboxError(`invalid ${what} value ${value}: must be a whole number`);
  }
}

/** cpuset lists, the soft limit, swappiness and the blkio weight. */
function validateSettings(limits: CgroupLimits): void {
  checkInteger(limits.memoryReservation, "--memory-reservation");
  checkInteger(limits.memorySwappiness, "--memory-swappiness");
  checkInteger(limits.blkioWeight, "--blkio-weight");
  for (const [value, flag] of [
    [limits.cpusetCpus, "--cpuset-cpus"],
    [limits.cpusetMems, "--cpuset-mems"],
  ] as const) {
    // The kernel's list format: "0", "0-3", "0,2-3"; anything else is a vague EINVAL.
    if (value !== undefined && !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(value)) {
      throw new MiniboxError(
        `invalid ${flag} value ${JSON.stringify(value)}`,
        'use a list such as "0", "0-3" or "0,2"',
      );
    }
  }
  if ((limits.memoryReservation ?? 0) < 0) {
    throw new MiniboxError(
      `invalid --memory-reservation value ${limits.memoryReservation}: must not be negative`,
    );
  }
  const swappiness = limits.memorySwappiness;
  if (swappiness !== undefined && (swappiness < 0 || swappiness > 100)) {
    throw new MiniboxError(
      `invalid --memory-swappiness value ${swappiness}: must be between 0 and 100`,
    );
  }
  const weight = limits.blkioWeight;
  if (weight !== undefined && (weight < 10 || weight > 1000)) {
    throw new MiniboxError(`invalid blkio weight ${weight}: must be between 10 and 1000`);
  }
}

/** Reject limits the kernel would take but that cannot work, or that it would reject with a vague EINVAL. */
export function validateLimits(limits: CgroupLimits): void {
  checkInteger(limits.memory, "--memory");
  checkInteger(limits.memorySwap, "--memory-swap");
  checkInteger(limits.cpuQuota, "CPU quota");
  checkInteger(limits.cpuPeriod, "CPU period");
  checkInteger(limits.cpuShares, "--cpu-shares");
  checkInteger(limits.pidsLimit, "--pids-limit");
  validateSettings(limits);
  const memory = limits.memory ?? 0;
  if (memory < 0) throw new MiniboxError(`invalid --memory value ${memory}: must not be negative`);
  if (memory > 0 && memory < MIN_MEMORY) {
    throw new MiniboxError(
      `--memory ${formatBytes(memory)} is below the minimum of ${formatBytes(MIN_MEMORY)}`,
      "a smaller limit leaves no room for the container's first process (Docker has the same minimum)",
    );
  }
  const swap = limits.memorySwap ?? 0;
  if (swap !== 0) {
    if (swap < -1) {
      throw new MiniboxError(
        `invalid --memory-swap value ${swap}`,
        "use -1 for unlimited swap, or a size at least as large as --memory",
      );
    }
    if (memory === 0) {
      throw new MiniboxError(
        "--memory-swap needs --memory too",
        "--memory-swap is the total of memory and swap, so it only means something with a memory limit",
      );
    }
    if (swap !== -1 && swap < memory) {
      throw new MiniboxError(
        `--memory-swap ${formatBytes(swap)} is smaller than --memory ${formatBytes(memory)}`,
        "--memory-swap is memory plus swap: make it at least as large as --memory, or -1 for unlimited swap",
      );
    }
  }
  const quota = limits.cpuQuota ?? 0;
  if (quota > 0 && quota < 1000) {
    throw new MiniboxError(
      `CPU quota ${quota}µs is below the kernel's minimum of 1000µs per period`,
      "use --cpus 0.01 or more",
    );
  }
  if (limits.cpuPeriod !== undefined && (limits.cpuPeriod < 1000 || limits.cpuPeriod > 1_000_000)) {
    throw new MiniboxError(
      `CPU period ${limits.cpuPeriod}µs is out of the kernel's range 1000µs to 1000000µs`,
    );
  }
  if (limits.cpuShares !== undefined && limits.cpuShares < 0) {
    throw new MiniboxError(`invalid --cpu-shares value ${limits.cpuShares}: must not be negative`);
  }
}

/** The controllers a set of limits cannot do without. */
export function neededControllers(limits: CgroupLimits): string[] {
  const out: string[] = [];
  if ((limits.memory ?? 0) > 0) out.push("memory");
  if ((limits.cpuQuota ?? 0) > 0 || limits.cpuPeriod !== undefined || (limits.cpuShares ?? 0) > 0) {
    out.push("cpu");
  }
  if (limits.pidsLimit !== undefined) out.push("pids");
  if (limits.cpusetCpus !== undefined || limits.cpusetMems !== undefined) out.push("cpuset");
  const memorySettings = [limits.memoryReservation, limits.memorySwappiness];
  if (memorySettings.some((v) => v !== undefined) || limits.disableOomKiller) {
    if (!out.includes("memory")) out.push("memory");
  }
  if (limits.blkioWeight !== undefined || (limits.blkioDevices ?? []).length > 0) {
    out.push("blkio");
  }
  return out;
}

export function controllerMissing(name: string, detail: string): MiniboxError {
  return new MiniboxError(`cgroup controller "${name}" is not available`, detail);
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** A container id becomes a directory name that destroy() kills everything in: be strict. */
export function checkId(id: string): void {
  if (!ID_RE.test(id)) {
    throw new MiniboxError(
      `invalid container id "${id}" for a cgroup name`,
      "use letters, digits, '_', '.' and '-', starting with a letter or digit",
    );
  }
}

/** "/mygroup/sub" → ["mygroup", "sub"]; "/" → []. Rejects "." and "..". */
export function parentParts(parent: string): string[] {
  const parts = parent.split("/").filter((p) => p !== "");
  for (const p of parts) {
    if (p === "." || p === ".." || p.includes("\0")) {
      throw new MiniboxError(
        `invalid --cgroup-parent "${parent}"`,
        'use an absolute cgroup path such as "/mygroup", without "." or ".."',
      );
    }
  }
  return parts;
}

export type Trace = (line: string) => void;
export const noTrace: Trace = () => {};

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

export function isErrno(err: unknown, ...codes: string[]): boolean {
  const code = errnoOf(err);
  return code !== undefined && codes.includes(code);
}

/** "EINVAL: invalid argument" from Node's "EINVAL: invalid argument, write". */
function describe(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split(",")[0] ?? message;
}

/** Write one value with one write(2), as the kernel expects; never creates the file. */
export function writeCgroupFile(path: string, value: string, trace: Trace, label = path): void {
  trace(`write ${label} = ${value}`);
  let fd: number;
  try {
    // O_WRONLY without O_CREAT: cgroupfs files cannot be created, and some are write-only.
    fd = openSync(path, fsConstants.O_WRONLY);
  } catch (err) {
    throw writeError(path, value, err);
  }
  try {
    writeSync(fd, value);
  } catch (err) {
    throw writeError(path, value, err);
  } finally {
    closeSync(fd);
  }
}

function writeError(path: string, value: string, err: unknown): MiniboxError {
  const code = errnoOf(err);
  if (code === "ENOENT") {
    return new MiniboxError(
      `cannot set ${path} to ${value}: the file does not exist`,
      "this kernel's cgroup controller lacks that setting",
    );
  }
  if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
    return new MiniboxError(
      `cannot set ${path} to ${value}: ${describe(err)}`,
      "minibox must run as root with a writable cgroup filesystem",
    );
  }
  if (code === "ENOSPC" && path.endsWith("cgroup.procs")) {
    return new MiniboxError(
      `cannot move process ${value} into ${path}: ${describe(err)}`,
      "the cgroup's cpuset.cpus or cpuset.mems is empty",
    );
  }
  return new MiniboxError(`cannot set ${path} to ${value}: the kernel refused (${describe(err)})`);
}

/** mkdir one level; false when it already existed. */
export function makeDir(path: string, trace: Trace): boolean {
  try {
    mkdirSync(path);
  } catch (err) {
    if (isErrno(err, "EEXIST")) return false;
    if (isErrno(err, "ENOENT")) throw err; // parent vanished (a concurrent cleanup): caller retries
    throw new MiniboxError(
      `cannot create cgroup ${path}: ${describe(err)}`,
      isErrno(err, "EACCES", "EPERM", "EROFS")
        ? "minibox must run as root with a writable cgroup filesystem"
        : undefined,
    );
  }
  trace(`mkdir ${path}`);
  return true;
}

/** Read a cgroupfs file, undefined when it does not exist. */
export function readCgroupFile(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    if (isErrno(err, "ENOENT", "ENODEV", "ESRCH")) return undefined;
    throw err;
  }
}

/** A number from a cgroupfs file ("max" → Infinity), undefined when missing. */
export function readNumber(path: string): number | undefined {
  const text = readCgroupFile(path)?.trim();
  if (text === undefined || text === "") return undefined;
  if (text === "max") return Number.POSITIVE_INFINITY;
  const n = Number(text.split(/\s+/)[0]);
  return Number.isFinite(n) ? n : undefined;
}

/** "key value" lines (memory.stat, memory.events, cpu.stat) → a map. */
export function readKeyed(path: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of (readCgroupFile(path) ?? "").split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined) out.set(key, Number(value));
  }
  return out;
}

/** PIDs listed in a cgroup.procs file (empty when the cgroup is gone). */
export function readPids(procsFile: string): number[] {
  return (readCgroupFile(procsFile) ?? "")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);
}

/** Memory limit for stats: the host's memory when the cgroup has none (like `docker stats`). */
let hostMemory: number | undefined;

export function effectiveMemoryLimit(limit: number | undefined): number {
  // Once per process: os.totalmem() reads /proc/meminfo each time (stats: 2 per container).
  hostMemory ??= totalmem();
  const host = hostMemory;
  return limit === undefined || limit > host ? host : limit;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * SIGKILL every process listed in the procs files until all are empty or the
 * deadline passes. Never signals this process itself or pid 1. Returns the
 * PIDs still present at the deadline (empty on success).
 */
export async function killAll(
  procsFiles: string[],
  trace: Trace,
  deadline: number,
  isEmpty: () => boolean = () => procsFiles.every((f) => readPids(f).length === 0),
): Promise<number[]> {
  const signalled = new Set<number>();
  for (;;) {
    const pids = new Set<number>();
    for (const f of procsFiles) for (const pid of readPids(f)) pids.add(pid);
    pids.delete(process.pid);
    pids.delete(1);
    if (pids.size === 0 && isEmpty()) return [];
    for (const pid of pids) {
      if (!signalled.has(pid)) trace(`kill -KILL ${pid}`);
      signalled.add(pid);
      try {
        process.kill(pid, "SIGKILL");
      } catch (err) {
        if (!isErrno(err, "ESRCH")) throw err;
      }
    }
    if (Date.now() >= deadline) return [...pids];
    await sleep(10);
  }
}

/**
 * rmdir a container cgroup, retrying while the kernel still calls it busy
 * (a killed task can linger a moment). ENOENT counts as done.
 */
export async function removeDir(path: string, trace: Trace, deadline: number): Promise<void> {
  if (!existsSync(path)) return;
  trace(`rmdir ${path}`);
  for (;;) {
    try {
      rmdirSync(path);
      return;
    } catch (err) {
      if (isErrno(err, "ENOENT")) return;
      if (!isErrno(err, "EBUSY") || Date.now() >= deadline) {
        throw new MiniboxError(`cannot remove cgroup ${path}: ${describe(err)}`);
      }
    }
    await sleep(10);
  }
}

/** rmdir an intermediate directory if nothing else lives in it; silent otherwise. */
export function removeIfEmpty(path: string, trace: Trace): void {
  try {
    rmdirSync(path);
    trace(`rmdir ${path}`);
  } catch (err) {
    if (!isErrno(err, "ENOENT", "EBUSY", "ENOTEMPTY", "EEXIST")) throw err;
  }
}
