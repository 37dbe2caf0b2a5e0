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

class V2Cgroup implements Cgroup {
  readonly version = 2 as const;
  readonly dirs: string[] = [];
  readonly procsFiles: string[] = [];
  private destroying: Promise<void> | undefined;

  /** Directories to rmdir after the leaf if empty, deepest first. */
  private readonly intermediates: string[] = [];

  constructor(
    private readonly leaf: string,
    private readonly trace: Trace,
  ) {}

  /** Record the directory once it exists. */
  created(): void {
    this.dirs.push(this.leaf);
    this.procsFiles.push(path.join(this.leaf, "cgroup.procs"));
  }

  /** Record an intermediate directory (created, or minibox's own) to remove at destroy when empty. */
  addIntermediate(dir: string): void {
    if (!this.intermediates.includes(dir)) this.intermediates.push(dir);
    this.intermediates.sort((a, b) => b.split("/").length - a.split("/").length);
  }

  private file(name: string): string {
    return path.join(this.leaf, name);
  }

  oomKilled(): boolean {
    return (readKeyed(this.file("memory.events")).get("oom_kill") ?? 0) > 0;
  }

  stats(): CgroupStats {
    if (!existsSync(this.leaf)) {
      throw new MiniboxError(`the container's cgroup ${this.leaf} no longer exists`);
    }
    const current = readNumber(this.file("memory.current")) ?? 0;
    const inactive = readKeyed(this.file("memory.stat")).get("inactive_file") ?? 0;
    const usec = readKeyed(this.file("cpu.stat")).get("usage_usec") ?? 0;
    const pids =
      readNumber(this.file("pids.current")) ??
      (readCgroupFile(this.file("cgroup.threads")) ?? "").split("\n").filter(Boolean).length;
    return {
      memoryUsage: Math.max(0, current - (inactive < current ? inactive : 0)),
      memoryLimit: effectiveMemoryLimit(readNumber(this.file("memory.max"))),
      cpuUsageNs: usec * 1000,
      pids,
    };
  }

  destroy(): Promise<void> {
    this.destroying ??= this.doDestroy().finally(() => {
      this.destroying = undefined;
    });
    return this.destroying;
  }

  private populated(): boolean {
    const events = readKeyed(this.file("cgroup.events"));
    const populated = events.get("populated");
    if (populated !== undefined) return populated > 0;
    return (readCgroupFile(this.file("cgroup.procs")) ?? "").trim() !== "";
  }

  private async doDestroy(): Promise<void> {
    const deadline = Date.now() + DESTROY_TIMEOUT_MS;
    let firstError: unknown;
    if (this.dirs.length > 0 && existsSync(this.leaf)) {
      // cgroup.kill (Linux 5.14+) kills every process at once, forks included.
      if (existsSync(this.file("cgroup.kill")) && this.populated()) {
        try {
          writeCgroupFile(this.file("cgroup.kill"), "1", this.trace, "cgroup.kill");
        } catch (err) {
          if (!isErrno(err, "ENOENT")) firstError = err;
        }
      }
      // Without cgroup.kill, or for what it missed: SIGKILL one by one.
      const left = await killAll(this.procsFiles, this.trace, deadline, () => !this.populated());
      if (left.length > 0) {
        firstError ??= new MiniboxError(
          `processes ${left.join(", ")} in the container's cgroup did not exit after SIGKILL`,
        );
      }
      try {
        await removeDir(this.leaf, this.trace, deadline + 1_000);
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

export async function createV2(
  id: string,
  limits: CgroupLimits,
  options: CgroupOptions,
): Promise<Cgroup> {
  const trace = options.trace ?? noTrace;
  const root = v2Root(options);
  const available = v2Controllers(root);
  for (const c of neededControllers(limits)) {
    if (!available.includes(c)) {
      throw controllerMissing(
        c,
        `${path.join(root, "cgroup.controllers")} lists only: ${available.join(" ") || "(nothing)"}`,
      );
    }
  }
  const wanted = V2_CONTROLLERS.filter((c) => available.includes(c));
  const paths = v2Paths(root, id, options.parent);
  const cg = new V2Cgroup(paths.leaf, trace);
  // The default `minibox` dir is minibox's own: removed when the last container goes.
  if (options.parent === undefined) cg.addIntermediate(paths.base);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        for (const [i, dir] of paths.levels.entries()) {
          if (i > 0 && makeDir(dir, trace)) cg.addIntermediate(dir);
          enableControllers(dir, wanted, trace);
        }
        if (!makeDir(paths.leaf, trace)) {
          throw new MiniboxError(
            `a cgroup for container ${id} already exists: ${paths.leaf}`,
            "another container has this id, or a crashed run left it: remove it first",
          );
        }
        break;
      } catch (err) {
        // A concurrent minibox removed the empty `minibox` dir under us: try again.
        const vanished = isErrno(err, "ENOENT") || !existsSync(paths.base);
        if (vanished && attempt < 5) continue;
        throw err;
      }
    }
    cg.created();
    const swap = existsSync(path.join(paths.leaf, "memory.swap.max"));
    if (!swap && (limits.memory ?? 0) > 0 && (limits.memorySwap ?? 0) !== 0) {
      trace("skip memory.swap.max: this kernel does not account swap (--memory-swap ignored)");
    }
    for (const [file, value] of v2Files(limits, { swap })) {
      writeCgroupFile(path.join(paths.leaf, file), value, trace, file);
    }
    return cg;
  } catch (err) {
    await cg.destroy().catch(() => {});
    throw err;
  }
}

export function openV2(id: string, options: CgroupOptions): Cgroup | undefined {
  const paths = v2Paths(v2Root(options), id, options.parent);
  if (!existsSync(paths.leaf)) return undefined;
  const cg = new V2Cgroup(paths.leaf, options.trace ?? noTrace);
  cg.created();
  if (options.parent === undefined) cg.addIntermediate(paths.base);
  return cg;
}
