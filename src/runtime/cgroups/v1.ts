/**
 * The cgroup v1 driver: one directory per hierarchy (cpuset, cpu, cpuacct,
 * memory, pids, devices; cpu and cpuacct share one when co-mounted; freezer too for
 * minibox-runc, which can pause), each at
 * `<mount>/<own cgroup>/minibox/<id>` so the container stays inside whatever
 * supervises the caller, or `<mount>/<--cgroup-parent>/<id>`.
 */
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { MiniboxError } from "../../errors.js";
import { v1DeviceRule } from "../devices.js";
import {
  type CgroupLimits,
  type CgroupOptions,
  type CgroupStats,
  controllerMissing,
  DEFAULT_CPU_PERIOD,
  DEFAULT_FS_ROOT,
  effectiveMemoryLimit,
  type FileValues,
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
import {
  findV1Mounts,
  ownCgroups,
  V1_BLKIO,
  V1_CONTROLLERS,
  V1_FREEZER,
  type V1Mount,
} from "./detect.js";

/**
 * The v1 files and values for a set of limits, in the order they must be
 * written. memsw: whether memory.memsw.limit_in_bytes exists (swap accounting).
 */
export function v1Files(
  limits: CgroupLimits,
  opts: { memsw?: boolean; blkioWeightFile?: string } = {},
): FileValues {
  const out: FileValues = [];
  // After prepareLeaf copied the parent's: the container's own set replaces it.
  if (limits.cpusetCpus !== undefined) out.push(["cpuset.cpus", limits.cpusetCpus]);
  if (limits.cpusetMems !== undefined) out.push(["cpuset.mems", limits.cpusetMems]);
  const memory = limits.memory ?? 0;
  if (memory > 0) {
    // limit_in_bytes first: the kernel keeps memsw >= limit at all times.
    out.push(["memory.limit_in_bytes", String(memory)]);
    if (opts.memsw ?? true) {
      const swap = limits.memorySwap ?? 0;
      // Docker: no --memory-swap means as much swap as memory (total = 2 × memory).
      const total = swap === -1 ? "-1" : String(swap > 0 ? swap : 2 * memory);
      out.push(["memory.memsw.limit_in_bytes", total]);
    }
  }
  if ((limits.memoryReservation ?? 0) > 0) {
    out.push(["memory.soft_limit_in_bytes", String(limits.memoryReservation)]);
  }
  if (limits.memorySwappiness !== undefined) {
    out.push(["memory.swappiness", String(limits.memorySwappiness)]);
  }
  if (limits.disableOomKiller) out.push(["memory.oom_control", "1"]);
  const quota = limits.cpuQuota;
  if (quota !== undefined || limits.cpuPeriod !== undefined) {
    out.push(["cpu.cfs_period_us", String(limits.cpuPeriod ?? DEFAULT_CPU_PERIOD)]);
    if (quota !== undefined) out.push(["cpu.cfs_quota_us", quota > 0 ? String(quota) : "-1"]);
  }
  if ((limits.cpuShares ?? 0) > 0) out.push(["cpu.shares", String(limits.cpuShares)]);
  if (limits.pidsLimit !== undefined) {
    out.push(["pids.max", limits.pidsLimit > 0 ? String(limits.pidsLimit) : "max"]);
  }
  out.push(...v1DeviceFiles(limits));
  out.push(...v1BlkioFiles(limits, opts.blkioWeightFile ?? "blkio.weight"));
  return out;
}

/**
 * blkio: the weight (WEIGHT_FILE: blkio.weight, or blkio.bfq.weight where
 * only the BFQ scheduler offers one, as runc falls back), then one write per
 * device line, the kernel's "major:minor value" format.
 */
export function v1BlkioFiles(limits: CgroupLimits, weightFile: string): FileValues {
  const out: FileValues = [];
  if (limits.blkioWeight !== undefined) out.push([weightFile, String(limits.blkioWeight)]);
  for (const d of limits.blkioDevices ?? []) {
    const file = d.file === "weight_device" ? `${weightFile}_device` : `blkio.${d.file}`;
    out.push([file, `${d.major}:${d.minor} ${d.value}`]);
  }
  return out;
}

/**
 * The device cgroup, one rule a write, in order: a new cgroup inherits its
 * parent's rules (the root's "a *:* rwm"), so the first rule is "deny all".
 */
export function v1DeviceFiles(limits: CgroupLimits): FileValues {
  return (limits.devices ?? []).map((r) => [
    r.allow ? "devices.allow" : "devices.deny",
    v1DeviceRule(r),
  ]);
}

export interface V1Paths {
  /** Deepest directory that must already exist (own cgroup, or the mount for --cgroup-parent). */
  floor: string;
  /** Directory holding the containers' cgroups (…/minibox, or the --cgroup-parent). */
  base: string;
  /** The container's cgroup. */
  leaf: string;
}

/**
 * Where a container's cgroup goes in one hierarchy. ownPath is this process's
 * cgroup in that hierarchy (/proc/self/cgroup); a mount whose root is not "/"
 * (bind-mounted from a sub-cgroup) shows paths relative to that root.
 */
export function v1Paths(mount: V1Mount, ownPath: string, id: string, parent?: string): V1Paths {
  if (parent !== undefined) {
    const base = path.join(mount.mountPoint, ...parentParts(parent));
    return { floor: mount.mountPoint, base, leaf: path.join(base, id) };
  }
  let rel = ownPath;
  if (mount.root !== "/" && (rel === mount.root || rel.startsWith(`${mount.root}/`))) {
    rel = rel.slice(mount.root.length);
  }
  // path.join keeps a trailing slash ("/sys/fs/cgroup/cpu" + "/" → ".../cpu/"): drop it.
  const floor = path.join(mount.mountPoint, rel).replace(/(.)\/+$/, "$1");
  const base = path.join(floor, "minibox");
  return { floor, base, leaf: path.join(base, id) };
}

interface Hierarchy {
  mountPoint: string;
  controllers: string[];
  paths: V1Paths;
}

/** Each mounted hierarchy minibox uses, once (co-mounted controllers share one). */
function hierarchies(id: string, options: CgroupOptions): Hierarchy[] {
  const mounts = findV1Mounts(options.fsRoot ?? DEFAULT_FS_ROOT);
  const own = ownCgroups();
  const seen = new Map<string, Hierarchy>();
  const wanted: string[] = [...V1_CONTROLLERS];
  if (options.freezer) wanted.push(V1_FREEZER);
  if (options.blkio) wanted.push(V1_BLKIO);
  for (const c of wanted) {
    const mount = mounts.get(c);
    if (!mount || seen.has(mount.mountPoint)) continue;
    const ownPath = own.get(c) ?? "/";
    seen.set(mount.mountPoint, {
      mountPoint: mount.mountPoint,
      controllers: mount.controllers,
      paths: v1Paths(mount, ownPath, id, options.parent),
    });
  }
  return [...seen.values()];
}

/** Copy cpuset.cpus and cpuset.mems from the parent when empty (else joining fails with ENOSPC). */
function fillCpuset(dir: string, trace: Trace, isLeaf = false): void {
  for (const file of ["cpuset.cpus", "cpuset.mems"]) {
    const own = readCgroupFile(path.join(dir, file))?.trim();
    if (own) continue;
    const parentFile = path.join(path.dirname(dir), file);
    const value = readCgroupFile(parentFile)?.trim();
    if (!value) {
      throw new MiniboxError(
        `cannot set up cpuset for ${dir}: ${parentFile} is empty`,
        "give the --cgroup-parent a cpuset.cpus and cpuset.mems first",
      );
    }
    const target = path.join(dir, file);
    writeCgroupFile(target, value, trace, isLeaf ? file : target);
  }
}

/** The floor (which must exist), then every level down to the containers' directory. */
function placementOf(paths: V1Paths, controllers: string[]): Placement {
  const { floor, base } = paths;
  const levels: string[] = [];
  for (let d = base; d !== floor && d.startsWith(floor); d = path.dirname(d)) levels.unshift(d);
  return { levels: [floor, ...levels], leaf: paths.leaf, controllers };
}

/**
 * v1: one directory per hierarchy, each under this process's own cgroup (so
 * the container stays inside whatever supervises the caller) or under the
 * --cgroup-parent.
 */
export function v1Driver(id: string, options: CgroupOptions): CgroupDriver {
  const trace = options.trace ?? noTrace;
  const list = hierarchies(id, options);
  return {
    version: 1,
    placements(limits) {
      const mounted = new Set(list.flatMap((h) => h.controllers));
      for (const c of neededControllers(limits)) {
        if (!mounted.has(c)) {
          throw controllerMissing(c, `no cgroup v1 hierarchy with "${c}" is mounted`);
        }
      }
      // Without it a container with CAP_MKNOD (--userns=host) could open any host device.
      if (limits.devices && !mounted.has("devices")) {
        throw controllerMissing("devices", 'no cgroup v1 hierarchy with "devices" is mounted');
      }
      if (list.length === 0) throw controllerMissing("memory", "no cgroup v1 hierarchy is mounted");
      return list.map((h) => placementOf(h.paths, h.controllers));
    },
    existing: () => existingLeaves(list, id, options.parent),
    prepareLevel(dir, placement, created) {
      if (dir === placement.levels[0]) return checkFloor(dir, options.parent);
      // Fill cpuset in dirs created now, and in minibox's own `minibox` dir if a
      // crashed run left it empty; never write into a user's existing parent.
      const cpuset = placement.controllers.includes("cpuset");
      if (cpuset && (created || options.parent === undefined)) fillCpuset(dir, trace);
    },
    prepareLeaf(placement) {
      if (placement.controllers.includes("cpuset")) fillCpuset(placement.leaf, trace, true);
    },
    limitWrites: (limits, cg) => v1LimitWrites(limits, cg, trace),
    oomKilled: v1OomKilled,
    stats: v1Stats,
    cpuUsageNs: v1CpuUsageNs,
    killProcesses: (cg, deadline) => killAll(cg.procsFiles, trace, deadline),
  };
}

function checkFloor(floor: string, parent: string | undefined): void {
  if (!existsSync(floor)) {
    throw new MiniboxError(
      `cgroup ${floor} does not exist`,
      parent === undefined ? "this process's own cgroup vanished" : undefined,
    );
  }
}

/** v1Files, each in the hierarchy of its controller (the file name's prefix). */
function v1LimitWrites(
  limits: CgroupLimits,
  cg: ContainerCgroup,
  trace: Trace,
): Array<[string, string]> {
  const memDir = cg.dirFor("memory");
  const memsw =
    memDir !== undefined && existsSync(path.join(memDir, "memory.memsw.limit_in_bytes"));
  if (!memsw && (limits.memory ?? 0) > 0 && (limits.memorySwap ?? 0) !== 0) {
    trace(
      "skip memory.memsw.limit_in_bytes: this kernel does not account swap (--memory-swap ignored)",
    );
  }
  const blkioDir = cg.dirFor("blkio");
  const bfqOnly =
    blkioDir !== undefined &&
    !existsSync(path.join(blkioDir, "blkio.weight")) &&
    existsSync(path.join(blkioDir, "blkio.bfq.weight"));
  const blkioWeightFile = bfqOnly ? "blkio.bfq.weight" : "blkio.weight";
  return v1Files(limits, { memsw, blkioWeightFile }).map(([file, value]) => {
    const dir = cg.dirFor(file.slice(0, file.indexOf("."))) as string;
    return [path.join(dir, file), value];
  });
}

function v1OomKilled(cg: ContainerCgroup): boolean {
  const dir = cg.dirFor("memory");
  if (!dir) return false;
  const kills = readKeyed(path.join(dir, "memory.oom_control")).get("oom_kill");
  if (kills !== undefined) return kills > 0;
  // Kernels before 4.13 have no oom_kill counter: hitting the limit and
  // staying there is the best sign left.
  const failcnt = readNumber(path.join(dir, "memory.failcnt")) ?? 0;
  const limit = readNumber(path.join(dir, "memory.limit_in_bytes")) ?? 0;
  const maxUsage = readNumber(path.join(dir, "memory.max_usage_in_bytes")) ?? 0;
  return failcnt > 0 && maxUsage >= limit - 64 * 1024;
}

function v1CpuUsageNs(cg: ContainerCgroup): number {
  const cpuacct = cg.dirFor("cpuacct");
  return cpuacct ? (readNumber(path.join(cpuacct, "cpuacct.usage")) ?? 0) : 0;
}

function v1Stats(cg: ContainerCgroup): CgroupStats {
  const memDir = cg.dirFor("memory");
  let memoryUsage = 0;
  let memoryLimit = effectiveMemoryLimit(undefined);
  if (memDir) {
    const usage = readNumber(path.join(memDir, "memory.usage_in_bytes")) ?? 0;
    const inactive = readKeyed(path.join(memDir, "memory.stat")).get("total_inactive_file") ?? 0;
    memoryUsage = Math.max(0, usage - (inactive < usage ? inactive : 0));
    memoryLimit = effectiveMemoryLimit(readNumber(path.join(memDir, "memory.limit_in_bytes")));
  }
  const cpuUsageNs = v1CpuUsageNs(cg);
  const pidsDir = cg.dirFor("pids");
  const pids =
    (pidsDir ? readNumber(path.join(pidsDir, "pids.current")) : undefined) ??
    (readCgroupFile(path.join(cg.dirs[0] as string, "tasks")) ?? "").split("\n").filter(Boolean)
      .length;
  return { memoryUsage, memoryLimit, cpuUsageNs, pids };
}

/**
 * Find `…/minibox/<id>` anywhere in a hierarchy: the container was created by
 * a minibox running in another cgroup (another login session, say). Read-only,
 * breadth-first, bounded; never descends into `minibox` dirs themselves.
 */
export function searchLeaf(mountPoint: string, id: string, maxDepth = 8): string | undefined {
  const queue: Array<[string, number]> = [[mountPoint, 0]];
  for (let visited = 0; queue.length > 0 && visited < 10_000; visited++) {
    const [dir, depth] = queue.shift() as [string, number];
    const candidate = path.join(dir, "minibox", id);
    if (existsSync(candidate)) return candidate;
    if (depth >= maxDepth) continue;
    try {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory() && e.name !== "minibox")
          queue.push([path.join(dir, e.name), depth + 1]);
      }
    } catch {
      // vanished or unreadable: skip
    }
  }
  return undefined;
}

/**
 * The container's directory in each hierarchy where it exists; without a
 * --cgroup-parent, wherever a minibox in another cgroup put it.
 */
function existingLeaves(list: Hierarchy[], id: string, parent: string | undefined): Placement[] {
  const out: Placement[] = [];
  for (const h of list) {
    let paths = h.paths;
    if (!existsSync(paths.leaf)) {
      if (parent !== undefined) continue;
      const found = searchLeaf(h.mountPoint, id);
      if (!found) continue;
      paths = { floor: path.dirname(path.dirname(found)), base: path.dirname(found), leaf: found };
    }
    out.push(placementOf(paths, h.controllers));
  }
  return out;
}
