/**
 * The cgroup v2 driver: one directory, `<cgroup2 root>/minibox/<id>` (at the
 * root because the no-internal-process rule forbids children next to the
 * caller's own processes), or `<root>/<--cgroup-parent>/<id>`. Controllers
 * are enabled top-down through each ancestor's cgroup.subtree_control.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { MiniboxError } from "../../errors.js";
import {
  type CgroupLimits,
  type CgroupOptions,
  type CgroupStats,
  controllerMissing,
  DEFAULT_CPU_PERIOD,
  DEFAULT_FS_ROOT,
  effectiveMemoryLimit,
  type FileValues,
  isErrno,
  killAll,
  neededControllers,
  noTrace,
  parentParts,
  readCgroupFile,
  readKeyed,
  readNumber,
  type Trace,
  writeCgroupFile,
} from "./common.js";
import type { CgroupDriver, ContainerCgroup, Placement } from "./container-cgroup.js";
import { findV2Root, V2_CONTROLLERS, v2Controllers } from "./detect.js";

/** runc's conversion of v1 cpu.shares [2, 262144] to v2 cpu.weight [1, 10000]. */
export function sharesToWeight(shares: number): number {
  const s = Math.min(262_144, Math.max(2, shares));
  return 1 + Math.floor(((s - 2) * 9999) / 262_142);
}

/**
 * The v2 files and values for a set of limits, in the order they must be
 * written. swap: whether memory.swap.max exists (swap accounting).
 */
export function v2Files(limits: CgroupLimits, opts: { swap?: boolean } = {}): FileValues {
  const out: FileValues = [];
  if (limits.cpusetCpus !== undefined) out.push(["cpuset.cpus", limits.cpusetCpus]);
  if (limits.cpusetMems !== undefined) out.push(["cpuset.mems", limits.cpusetMems]);
  if ((limits.memoryReservation ?? 0) > 0) {
    out.push(["memory.low", String(limits.memoryReservation)]);
  }
  const memory = limits.memory ?? 0;
  if (memory > 0) {
    out.push(["memory.max", String(memory)]);
    if (opts.swap ?? true) {
      const total = limits.memorySwap ?? 0;
      // v2 limits swap alone: total − memory. Docker's default total is 2 × memory.
      const swap = total === -1 ? "max" : String(total > 0 ? total - memory : memory);
      out.push(["memory.swap.max", swap]);
    }
  }
  const quota = limits.cpuQuota;
  if (quota !== undefined || limits.cpuPeriod !== undefined) {
    const q = quota !== undefined && quota > 0 ? String(quota) : "max";
    out.push(["cpu.max", `${q} ${limits.cpuPeriod ?? DEFAULT_CPU_PERIOD}`]);
  }
  if ((limits.cpuShares ?? 0) > 0) {
    out.push(["cpu.weight", String(sharesToWeight(limits.cpuShares as number))]);
  }
  if (limits.pidsLimit !== undefined) {
    out.push(["pids.max", limits.pidsLimit > 0 ? String(limits.pidsLimit) : "max"]);
  }
  return out;
}

/** What v1 has and cgroup v2 does not: refused before anything is made, never ignored. */
export function v2Unsupported(limits: CgroupLimits): string | undefined {
  if (limits.memorySwappiness !== undefined) {
    return "memory swappiness cannot be set on cgroup v2 (it has no memory.swappiness)";
  }
  if (limits.disableOomKiller) {
    return "the OOM killer cannot be disabled on cgroup v2 (it has no memory.oom_control)";
  }
  if (limits.blkioWeight !== undefined || (limits.blkioDevices ?? []).length > 0) {
    return "minibox applies blkio limits on cgroup v1 only (cgroup v2's io controller is not driven)";
  }
  return undefined;
}

export interface V2Paths {
  /** Every directory from the root down to the one holding the containers. */
  levels: string[];
  base: string;
  leaf: string;
}

export function v2Paths(root: string, id: string, parent?: string): V2Paths {
  const parts = parent === undefined ? ["minibox"] : parentParts(parent);
  const levels = [root];
  for (const p of parts) levels.push(path.join(levels[levels.length - 1] as string, p));
  const base = levels[levels.length - 1] as string;
  return { levels, base, leaf: path.join(base, id) };
}

function v2Root(options: CgroupOptions): string {
  const fsRoot = options.fsRoot ?? DEFAULT_FS_ROOT;
  const root = findV2Root(fsRoot);
  if (!root) throw new MiniboxError(`no usable cgroup2 mount at ${fsRoot}`);
  return root;
}

/** Does the cgroup (or anything below it) still hold a process? */
function populated(dir: string): boolean {
  const value = readKeyed(path.join(dir, "cgroup.events")).get("populated");
  if (value !== undefined) return value > 0;
  return (readCgroupFile(path.join(dir, "cgroup.procs")) ?? "").trim() !== "";
}

function v2CpuUsageNs(cg: ContainerCgroup): number {
  const usec = readKeyed(path.join(cg.dirs[0] as string, "cpu.stat")).get("usage_usec") ?? 0;
  return usec * 1000;
}

function v2Stats(cg: ContainerCgroup): CgroupStats {
  const file = (name: string) => path.join(cg.dirs[0] as string, name);
  const current = readNumber(file("memory.current")) ?? 0;
  const inactive = readKeyed(file("memory.stat")).get("inactive_file") ?? 0;
  const pids =
    readNumber(file("pids.current")) ??
    (readCgroupFile(file("cgroup.threads")) ?? "").split("\n").filter(Boolean).length;
  return {
    memoryUsage: Math.max(0, current - (inactive < current ? inactive : 0)),
    memoryLimit: effectiveMemoryLimit(readNumber(file("memory.max"))),
    cpuUsageNs: v2CpuUsageNs(cg),
    pids,
  };
}

/** cgroup.kill (Linux 5.14+) first, which kills every process at once, forks included. */
async function v2Kill(
  cg: ContainerCgroup,
  deadline: number,
  onError: (err: unknown) => void,
): Promise<number[]> {
  const leaf = cg.dirs[0];
  if (leaf === undefined || !existsSync(leaf)) return [];
  const kill = path.join(leaf, "cgroup.kill");
  if (existsSync(kill) && populated(leaf)) {
    try {
      writeCgroupFile(kill, "1", cg.trace, "cgroup.kill");
    } catch (err) {
      if (!isErrno(err, "ENOENT")) onError(err);
    }
  }
  // Without cgroup.kill, or for what it missed: SIGKILL one by one.
  return killAll(cg.procsFiles, cg.trace, deadline, () => !populated(leaf));
}

/** Enable the wanted controllers for a directory's children, only those missing. */
function enableControllers(dir: string, wanted: string[], trace: Trace): void {
  const available = v2Controllers(dir);
  const enabled = (readCgroupFile(path.join(dir, "cgroup.subtree_control")) ?? "")
    .split(/\s+/)
    .filter(Boolean);
  const missing = wanted.filter((c) => available.includes(c) && !enabled.includes(c));
  if (missing.length === 0) return;
  const value = missing.map((c) => `+${c}`).join(" ");
  try {
    writeCgroupFile(path.join(dir, "cgroup.subtree_control"), value, trace);
  } catch (err) {
    if (err instanceof MiniboxError && /EBUSY/.test(err.message)) {
      throw new MiniboxError(
        `cannot enable ${missing.join(", ")} for the children of ${dir}: it has processes of its own`,
        "cgroup v2 allows controllers only below cgroups without processes (choose another --cgroup-parent)",
      );
    }
    throw err;
  }
}

/**
 * v2: one directory, at the root of the cgroup2 mount (the no-internal-process
 * rule forbids children next to the caller's own processes) or under the
 * --cgroup-parent; controllers enabled top down.
 */
export function v2Driver(id: string, options: CgroupOptions): CgroupDriver {
  const trace = options.trace ?? noTrace;
  const root = v2Root(options);
  const paths = v2Paths(root, id, options.parent);
  const available = v2Controllers(root);
  const placement: Placement = {
    levels: paths.levels,
    leaf: paths.leaf,
    controllers: V2_CONTROLLERS.filter((c) => available.includes(c)),
  };
  return {
    version: 2,
    placements(limits) {
      const refused = v2Unsupported(limits);
      if (refused) throw new MiniboxError(refused);
      for (const c of neededControllers(limits)) {
        if (!available.includes(c)) {
          const listed = available.join(" ") || "(nothing)";
          throw controllerMissing(
            c,
            `${path.join(root, "cgroup.controllers")} lists only: ${listed}`,
          );
        }
      }
      return [placement];
    },
    existing: () => (existsSync(paths.leaf) ? [placement] : []),
    prepareLevel: (dir) => enableControllers(dir, placement.controllers, trace),
    prepareLeaf: () => {},
    limitWrites(limits) {
      const swap = existsSync(path.join(paths.leaf, "memory.swap.max"));
      if (!swap && (limits.memory ?? 0) > 0 && (limits.memorySwap ?? 0) !== 0) {
        trace("skip memory.swap.max: this kernel does not account swap (--memory-swap ignored)");
      }
      return v2Files(limits, { swap }).map(([file, value]) => [path.join(paths.leaf, file), value]);
    },
    oomKilled: (cg) =>
      (readKeyed(path.join(cg.dirs[0] as string, "memory.events")).get("oom_kill") ?? 0) > 0,
    stats: v2Stats,
    cpuUsageNs: v2CpuUsageNs,
    killProcesses: v2Kill,
  };
}
