// What test/vm/v2-check.ts observes inside the VM, shared with the test that judges it.
import type { CgroupStats } from "../../src/runtime/cgroups/index.js";

/** Prefix of the one console line that carries the JSON result. */
export const V2_CHECK_MARKER = "MINIBOX-V2-CHECK-RESULT ";

export interface Exit {
  code: number | null;
  signal: string | null;
}

export interface Destroyed {
  /** PIDs in the cgroup just before destroy(). */
  pidsBefore: number[];
  /** Those still alive (not zombies) after destroy(). */
  pidsAliveAfter: number[];
  /** existsSync of each of cg.dirs after destroy(). */
  dirsExistAfter: boolean[];
  /** The driver's trace lines during destroy(). */
  trace: string[];
}

export interface V2CheckResult {
  kernel: string;
  /** cgroup lines of /proc/self/mounts. */
  mounts: string[];
  version: number | undefined;
  rootControllers: string[];
  /** step name → ms */
  steps: Record<string, number>;
  errors: string[];
  limits?: {
    version: number;
    dirs: string[];
    procsFiles: string[];
    rootSubtreeControl: string[];
    baseSubtreeControl: string[];
    leafControllers: string[];
    files: Record<string, string | undefined>;
    /** /proc/<pid>/cgroup of the joined process. */
    procCgroup: string;
    busyDone: boolean;
    stats: CgroupStats;
    destroy: Destroyed;
    baseExistsAfter: boolean;
    exit: Exit;
    /** The error of a second createCgroup with the same id. */
    duplicate: string;
    /** The first cgroup after that failed attempt. */
    afterDuplicate: { leafExists: boolean; procs: number };
    /** openCgroup of the live id, and of an id that does not exist. */
    reopen: { dirs?: string[]; procsFiles?: string[]; missing: boolean };
  };
  oom?: {
    procCgroup: string;
    exit: Exit;
    oomKilled: boolean;
    memoryEvents: Record<string, number>;
    memoryMax: string | undefined;
    destroy: Destroyed;
  };
  pids?: {
    procCgroup: string;
    exit: Exit;
    stdout: string;
    stderr: string;
    pidsMax: string | undefined;
    pidsCurrent: number;
    pidsEvents: Record<string, number>;
    procsLeft: number;
    statsPids: number;
    /** No memory limit here: must be false. */
    oomKilled: boolean;
    destroy: Destroyed;
  };
  /** createCgroup under a --cgroup-parent that has a process of its own. */
  busyParent?: { error: string; leftover: boolean };
  miniboxDirAfter?: boolean;
  /** Every trace line of the driver, in order. */
  trace?: string[];
}
