/**
 * A container's cgroup, whatever the version: the one skeleton both drivers
 * share. Creating is: for each place the container gets a directory (one
 * per hierarchy on v1, one on v2), make the levels above it, make it, write
 * the limits; then processes join through `procsFiles`, `stats()` reads it,
 * and `destroy()` kills what is left and removes what was made.
 *
 * A driver (v1.ts, v2.ts) supplies only what differs between the versions:
 * where the directories go, what a level needs before it can hold children
 * (v1: cpuset values; v2: controllers in subtree_control), the files and
 * value formats of the limits, how stats are read and how to kill.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { MiniboxError } from "../../errors.js";
import {
  type Cgroup,
  type CgroupLimits,
  type CgroupOptions,
  type CgroupStats,
  DESTROY_TIMEOUT_MS,
  isErrno,
  makeDir,
  noTrace,
  removeDir,
  removeIfEmpty,
  type Trace,
  writeCgroupFile,
} from "./common.js";

/** Where one of the container's directories goes. */
export interface Placement {
  /**
   * The directories above it, top down: the first must exist and is never
   * created (this process's own cgroup, a mount, the cgroup2 root); the last
   * holds the containers' cgroups.
   */
  levels: string[];
  /** The container's directory. */
  leaf: string;
  /** The controllers it serves (v1: its hierarchy's; v2: those enabled). */
  controllers: string[];
}

/** What one cgroup version does its own way. */
export interface CgroupDriver {
  readonly version: 1 | 2;
  /** Where the directories go; throws when a controller the limits need is missing. */
  placements(limits: CgroupLimits): Placement[];
  /** For reopening: the placements whose container directory exists. */
  existing(): Placement[];
  /** Ready a level for children; `created`: it was made just now. */
  prepareLevel(dir: string, placement: Placement, created: boolean): void;
  /** Ready the container's directory for processes. */
  prepareLeaf(placement: Placement): void;
  /** The limits as [path, value] writes, in the order they must be made. */
  limitWrites(limits: CgroupLimits, cg: ContainerCgroup): Array<[path: string, value: string]>;
  oomKilled(cg: ContainerCgroup): boolean;
  stats(cg: ContainerCgroup): CgroupStats;
  cpuUsageNs(cg: ContainerCgroup): number;
  /** Kill every process in it, until `deadline`; returns the PIDs still there. */
  killProcesses(
    cg: ContainerCgroup,
    deadline: number,
    onError: (err: unknown) => void,
  ): Promise<number[]>;
}

/** A concurrent minibox may remove the empty `minibox` dir under us: how often to start over. */
const MAX_ATTEMPTS = 6;

export class ContainerCgroup implements Cgroup {
  readonly dirs: string[] = [];
  readonly procsFiles: string[] = [];
  /** controller → the container's directory serving it. */
  private readonly byController = new Map<string, string>();
  /** Directories to rmdir after the container's if empty, deepest first. */
  private readonly intermediates: string[] = [];
  private destroying: Promise<void> | undefined;

  constructor(
    private readonly driver: CgroupDriver,
    readonly trace: Trace,
  ) {}

  get version(): 1 | 2 {
    return this.driver.version;
  }

  /** Record one of the container's directories, as soon as it exists. */
  addDir(dir: string, controllers: string[]): void {
    this.dirs.push(dir);
    this.procsFiles.push(path.join(dir, "cgroup.procs"));
    for (const c of controllers) this.byController.set(c, dir);
  }

  /** Record a directory above the container's, to remove at destroy when empty. */
  addIntermediate(dir: string): void {
    if (!this.intermediates.includes(dir)) this.intermediates.push(dir);
    // Deepest first (across v1's hierarchies too).
    this.intermediates.sort((a, b) => b.split("/").length - a.split("/").length);
  }

  /** The directories above the container's that were made for it (removed at destroy when empty). */
  createdAbove(): string[] {
    return [...this.intermediates];
  }

  dirFor(controller: string): string | undefined {
    return this.byController.get(controller);
  }

  limitWrites(limits: CgroupLimits): Array<[path: string, value: string]> {
    return this.driver.limitWrites(limits, this);
  }

  oomKilled(): boolean {
    return this.driver.oomKilled(this);
  }

  stats(): CgroupStats {
    this.mustExist();
    return this.driver.stats(this);
  }

  cpuUsageNs(): number {
    this.mustExist();
    return this.driver.cpuUsageNs(this);
  }

  private mustExist(): void {
    const dir = this.dirs[0];
    if (!dir || !existsSync(dir)) {
      throw new MiniboxError(`the container's cgroup ${dir ?? ""} no longer exists`);
    }
  }

  destroy(): Promise<void> {
    this.destroying ??= this.doDestroy().finally(() => {
      this.destroying = undefined;
    });
    return this.destroying;
  }

  private async doDestroy(): Promise<void> {
    const deadline = Date.now() + DESTROY_TIMEOUT_MS;
    const errors: unknown[] = [];
    const left = await this.driver.killProcesses(this, deadline, (err) => errors.push(err));
    if (left.length > 0) {
      errors.push(
        new MiniboxError(
          `processes ${left.join(", ")} in the container's cgroup did not exit after SIGKILL`,
        ),
      );
    }
    for (const dir of this.dirs) {
      await removeDir(dir, this.trace, deadline + 1_000).catch((err) => errors.push(err));
    }
    for (const dir of this.intermediates) {
      try {
        removeIfEmpty(dir, this.trace);
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}

/**
 * Create the container's directories and write the limits. The cgroup
 * object grows as directories appear, so that when a later step fails,
 * destroy() removes exactly what exists.
 */
export async function createWith(
  driver: CgroupDriver,
  id: string,
  limits: CgroupLimits,
  options: CgroupOptions,
): Promise<Cgroup> {
  const trace = options.trace ?? noTrace;
  const placements = driver.placements(limits);
  const cg = new ContainerCgroup(driver, trace);
  try {
    for (const placement of placements) {
      // The default `minibox` dir is minibox's own: removed when the last container goes.
      if (options.parent === undefined) cg.addIntermediate(baseOf(placement));
      makeLeaf(cg, driver, placement, id);
      cg.addDir(placement.leaf, placement.controllers);
      driver.prepareLeaf(placement);
    }
    for (const [file, value] of driver.limitWrites(limits, cg)) {
      writeCgroupFile(file, value, trace, path.basename(file));
    }
    return cg;
  } catch (err) {
    await cg.destroy().catch(() => {});
    throw err;
  }
}

/** Reopen a container's cgroup (stats, cleanup); undefined when it has no directory left. */
export function openWith(driver: CgroupDriver, options: CgroupOptions): Cgroup | undefined {
  const cg = new ContainerCgroup(driver, options.trace ?? noTrace);
  for (const placement of driver.existing()) {
    cg.addDir(placement.leaf, placement.controllers);
    if (options.parent === undefined) cg.addIntermediate(baseOf(placement));
  }
  return cg.dirs.length > 0 ? cg : undefined;
}

function baseOf(placement: Placement): string {
  return path.dirname(placement.leaf);
}

/** The levels, then the container's directory, which must be new. */
function makeLeaf(cg: ContainerCgroup, driver: CgroupDriver, p: Placement, id: string): void {
  for (let attempt = 1; ; attempt++) {
    try {
      makeLevels(cg, driver, p);
      if (!makeDir(p.leaf, cg.trace)) {
        throw new MiniboxError(
          `a cgroup for container ${id} already exists: ${p.leaf}`,
          "another container has this id, or a crashed run left it: remove it first",
        );
      }
      return;
    } catch (err) {
      const vanished = isErrno(err, "ENOENT") || !existsSync(baseOf(p));
      if (!vanished || attempt >= MAX_ATTEMPTS) throw err;
    }
  }
}

function makeLevels(cg: ContainerCgroup, driver: CgroupDriver, p: Placement): void {
  for (const [i, dir] of p.levels.entries()) {
    const created = i > 0 && makeDir(dir, cg.trace);
    if (created) cg.addIntermediate(dir);
    driver.prepareLevel(dir, p, created);
  }
}
