/**
 * The cgroup v1 driver: one directory per hierarchy (cpuset, cpu, cpuacct,
 * memory, pids; cpu and cpuacct share one when co-mounted), each at
 * `<mount>/<own cgroup>/minibox/<id>` so the container stays inside whatever
 * supervises the caller, or `<mount>/<--cgroup-parent>/<id>`.
 */
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { MiniboxError } from "../../errors.js";
import {
  type Cgroup,
  type CgroupLimits,
  type CgroupOptions,
  type CgroupStats,
  controllerMissing,
  DEFAULT_CPU_PERIOD,
  DEFAULT_FS_ROOT,
  DESTROY_TIMEOUT_MS,
  effectiveMemoryLimit,
  type FileValues,
  isErrno,
  killAll,
  makeDir,
  neededControllers,
  noTrace,
  parentParts,
  readCgroupFile,
  readKeyed,
  readNumber,
  removeDir,
  removeIfEmpty,
  type Trace,
  writeCgroupFile,
} from "./common.js";
import { findV1Mounts, ownCgroups, V1_CONTROLLERS, type V1Mount } from "./detect.js";

/**
 * The v1 files and values for a set of limits, in the order they must be
 * written. memsw: whether memory.memsw.limit_in_bytes exists (swap accounting).
 */
export function v1Files(limits: CgroupLimits, opts: { memsw?: boolean } = {}): FileValues {
  const out: FileValues = [];
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
  const quota = limits.cpuQuota;
  if (quota !== undefined || limits.cpuPeriod !== undefined) {
    out.push(["cpu.cfs_period_us", String(limits.cpuPeriod ?? DEFAULT_CPU_PERIOD)]);
    if (quota !== undefined) out.push(["cpu.cfs_quota_us", quota > 0 ? String(quota) : "-1"]);
  }
  if ((limits.cpuShares ?? 0) > 0) out.push(["cpu.shares", String(limits.cpuShares)]);
  if (limits.pidsLimit !== undefined) {
    out.push(["pids.max", limits.pidsLimit > 0 ? String(limits.pidsLimit) : "max"]);
  }
  return out;
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
  for (const c of V1_CONTROLLERS) {
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

class V1Cgroup implements Cgroup {
  readonly version = 1 as const;
  readonly dirs: string[] = [];
  readonly procsFiles: string[] = [];
  /** controller → the container's directory in that controller's hierarchy. */
  private readonly byController = new Map<string, string>();
  /** Directories to rmdir after the leaves if empty, deepest first. */
  private readonly intermediates: string[] = [];
  private destroying: Promise<void> | undefined;

  constructor(private readonly trace: Trace) {}

  /** Record one hierarchy's container directory (as soon as it exists). */
  addDir(leaf: string, controllers: string[]): void {
    this.dirs.push(leaf);
    this.procsFiles.push(path.join(leaf, "cgroup.procs"));
    for (const c of controllers) this.byController.set(c, leaf);
  }

  /** Record intermediate directories to remove at destroy when empty. */
  addIntermediates(dirs: string[]): void {
    for (const d of dirs) if (!this.intermediates.includes(d)) this.intermediates.push(d);
    // Deepest first across hierarchies.
    this.intermediates.sort((a, b) => b.split("/").length - a.split("/").length);
  }

  dirFor(controller: string): string | undefined {
    return this.byController.get(controller);
  }

  private file(controller: string, name: string): string | undefined {
    const dir = this.byController.get(controller);
    return dir ? path.join(dir, name) : undefined;
  }

  oomKilled(): boolean {
    const oomControl = this.file("memory", "memory.oom_control");
    if (!oomControl) return false;
    const control = readKeyed(oomControl);
    const kills = control.get("oom_kill");
    if (kills !== undefined) return kills > 0;
    // Kernels before 4.13 have no oom_kill counter: hitting the limit and
    // staying there is the best sign left.
    const dir = this.dirFor("memory") as string;
    const failcnt = readNumber(path.join(dir, "memory.failcnt")) ?? 0;
    const limit = readNumber(path.join(dir, "memory.limit_in_bytes")) ?? 0;
    const maxUsage = readNumber(path.join(dir, "memory.max_usage_in_bytes")) ?? 0;
    return failcnt > 0 && maxUsage >= limit - 64 * 1024;
  }

  stats(): CgroupStats {
    const dir = this.dirs[0];
    if (!dir || !existsSync(dir)) {
      throw new MiniboxError(`the container's cgroup ${dir ?? ""} no longer exists`);
    }
    const memDir = this.dirFor("memory");
    let memoryUsage = 0;
    let memoryLimit = effectiveMemoryLimit(undefined);
    if (memDir) {
      const usage = readNumber(path.join(memDir, "memory.usage_in_bytes")) ?? 0;
      const inactive = readKeyed(path.join(memDir, "memory.stat")).get("total_inactive_file") ?? 0;
      memoryUsage = Math.max(0, usage - (inactive < usage ? inactive : 0));
      memoryLimit = effectiveMemoryLimit(readNumber(path.join(memDir, "memory.limit_in_bytes")));
    }
    const cpuacct = this.file("cpuacct", "cpuacct.usage");
    const cpuUsageNs = cpuacct ? (readNumber(cpuacct) ?? 0) : 0;
    const pidsCurrent = this.file("pids", "pids.current");
    const pids =
      (pidsCurrent ? readNumber(pidsCurrent) : undefined) ??
      (readCgroupFile(path.join(dir, "tasks")) ?? "").split("\n").filter(Boolean).length;
    return { memoryUsage, memoryLimit, cpuUsageNs, pids };
  }

  destroy(): Promise<void> {
    this.destroying ??= this.doDestroy().finally(() => {
      this.destroying = undefined;
    });
    return this.destroying;
  }

  private async doDestroy(): Promise<void> {
    const deadline = Date.now() + DESTROY_TIMEOUT_MS;
    const left = await killAll(this.procsFiles, this.trace, deadline);
    let firstError: unknown;
    if (left.length > 0) {
      firstError = new MiniboxError(
        `processes ${left.join(", ")} in the container's cgroup did not exit after SIGKILL`,
      );
    }
    for (const dir of this.dirs) {
      try {
        await removeDir(dir, this.trace, deadline + 1_000);
      } catch (err) {
        firstError ??= err;
      }
    }
    for (const dir of this.intermediates) {
      try {
        removeIfEmpty(dir, this.trace);
      } catch (err) {
        firstError ??= err;
      }
    }
    if (firstError) throw firstError;
  }
}

/** The intermediate directories of one hierarchy to try to remove at destroy, deepest first. */
function intermediatesFor(paths: V1Paths, created: string[], parent: string | undefined): string[] {
  const out = [...created].reverse();
  // The default `minibox` dir is minibox's own: remove it when the last container goes.
  if (parent === undefined && !out.includes(paths.base)) out.unshift(paths.base);
  return out;
}

/** mkdir every missing level from floor (exclusive) to base (inclusive); returns those created. */
function ensureBase(h: Hierarchy, isCpuset: boolean, trace: Trace, parent?: string): string[] {
  const { floor, base } = h.paths;
  if (!existsSync(floor)) {
    throw new MiniboxError(
      `cgroup ${floor} does not exist`,
      parent === undefined ? "this process's own cgroup vanished" : undefined,
    );
  }
  const levels: string[] = [];
  for (let d = base; d !== floor && d.startsWith(floor); d = path.dirname(d)) levels.unshift(d);
  const created: string[] = [];
  for (const dir of levels) {
    if (makeDir(dir, trace)) created.push(dir);
    // Fill cpuset in dirs created now, and in minibox's own `minibox` dir if a
    // crashed run left it empty; never write into a user's existing parent.
    if (isCpuset && (created.includes(dir) || parent === undefined)) fillCpuset(dir, trace);
  }
  return created;
}

export async function createV1(
  id: string,
  limits: CgroupLimits,
  options: CgroupOptions,
): Promise<Cgroup> {
  const trace = options.trace ?? noTrace;
  const list = hierarchies(id, options);
  const mounted = new Set(list.flatMap((h) => h.controllers));
  for (const c of neededControllers(limits)) {
    if (!mounted.has(c)) {
      throw controllerMissing(c, `no cgroup v1 hierarchy with "${c}" is mounted`);
    }
  }
  if (list.length === 0) throw controllerMissing("memory", "no cgroup v1 hierarchy is mounted");

  // The cgroup object grows as directories appear, so that destroy() removes
  // exactly what exists when a later step fails.
  const cg = new V1Cgroup(trace);
  try {
    for (const h of list) {
      const isCpuset = h.controllers.includes("cpuset");
      for (let attempt = 0; ; attempt++) {
        try {
          const created = ensureBase(h, isCpuset, trace, options.parent);
          cg.addIntermediates(intermediatesFor(h.paths, created, options.parent));
          if (!makeDir(h.paths.leaf, trace)) {
            throw new MiniboxError(
              `a cgroup for container ${id} already exists: ${h.paths.leaf}`,
              "another container has this id, or a crashed run left it: remove it first",
            );
          }
          break;
        } catch (err) {
          // A concurrent minibox removed the empty `minibox` dir under us: try again.
          const vanished = isErrno(err, "ENOENT") || !existsSync(h.paths.base);
          if (vanished && attempt < 5) continue;
          throw err;
        }
      }
      cg.addDir(h.paths.leaf, h.controllers);
      if (isCpuset) fillCpuset(h.paths.leaf, trace, true);
    }

    const memDir = cg.dirFor("memory");
    const memsw =
      memDir !== undefined && existsSync(path.join(memDir, "memory.memsw.limit_in_bytes"));
    if (!memsw && (limits.memory ?? 0) > 0 && (limits.memorySwap ?? 0) !== 0) {
      trace(
        "skip memory.memsw.limit_in_bytes: this kernel does not account swap (--memory-swap ignored)",
      );
    }
    for (const [file, value] of v1Files(limits, { memsw })) {
      const dir = cg.dirFor(file.slice(0, file.indexOf("."))) as string;
      writeCgroupFile(path.join(dir, file), value, trace, file);
    }
    return cg;
  } catch (err) {
    await cg.destroy().catch(() => {});
    throw err;
  }
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

export function openV1(id: string, options: CgroupOptions): Cgroup | undefined {
  const cg = new V1Cgroup(options.trace ?? noTrace);
  for (const h of hierarchies(id, options)) {
    let paths = h.paths;
    if (!existsSync(paths.leaf)) {
      if (options.parent !== undefined) continue;
      const found = searchLeaf(h.mountPoint, id);
      if (!found) continue;
      paths = { floor: path.dirname(path.dirname(found)), base: path.dirname(found), leaf: found };
    }
    cg.addDir(paths.leaf, h.controllers);
    cg.addIntermediates(intermediatesFor(paths, [], options.parent));
  }
  return cg.dirs.length > 0 ? cg : undefined;
}
