/**
 * The freezer: stop every process of a cgroup where it stands (pause) and
 * let it go on (resume). v1: `freezer.state` in the freezer hierarchy,
 * FROZEN/THAWED, read back as FREEZING until every task has stopped; v2:
 * `cgroup.freeze` 1/0, settled when `cgroup.events` says `frozen 1`/`0`.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { MiniboxError } from "../../errors.js";
import { readCgroupFile, readKeyed, writeCgroupFile } from "./common.js";

export interface Freezer {
  version: 1 | 2;
  /** The container's directory holding the freezer's files. */
  dir: string;
}

/** The freezer file and value that ask for FROZEN (true) or thawed. */
export function freezerWrite(version: 1 | 2, frozen: boolean): [file: string, value: string] {
  if (version === 1) return ["freezer.state", frozen ? "FROZEN" : "THAWED"];
  return ["cgroup.freeze", frozen ? "1" : "0"];
}

/** Which of a container's cgroup directories has the freezer (none: a v1 cgroup made without it). */
export function findFreezer(dirs: string[]): Freezer | undefined {
  for (const dir of dirs) {
    if (existsSync(path.join(dir, "freezer.state"))) return { version: 1, dir };
    if (existsSync(path.join(dir, "cgroup.freeze"))) return { version: 2, dir };
  }
  return undefined;
}

/** What `state` calls paused (as runc, and native/minibox-runc-fast.c): v1 FROZEN, v2 cgroup.freeze 1. */
export function isPaused(f: Freezer): boolean {
  const [file, value] = freezerWrite(f.version, true);
  return readCgroupFile(path.join(f.dir, file))?.trim() === value;
}

/** Has every task reached the asked state? */
function settled(f: Freezer, frozen: boolean): boolean {
  if (f.version === 1) {
    const value = readCgroupFile(path.join(f.dir, "freezer.state"))?.trim();
    return value === (frozen ? "FROZEN" : "THAWED");
  }
  return readKeyed(path.join(f.dir, "cgroup.events")).get("frozen") === (frozen ? 1 : 0);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long a freeze may stay unsettled: a task in an uninterruptible sleep holds v1 in FREEZING. */
const SETTLE_ATTEMPTS = 1000;

/**
 * Freeze or thaw, and wait until the kernel says it is done. v1 is asked
 * again each time (as runc does: a task forked meanwhile can leave it in
 * FREEZING); a freeze that never settles is undone and reported.
 */
export async function setFrozen(f: Freezer, frozen: boolean): Promise<void> {
  const [file, value] = freezerWrite(f.version, frozen);
  const target = path.join(f.dir, file);
  for (let attempt = 0; attempt < SETTLE_ATTEMPTS; attempt++) {
    if (attempt === 0 || f.version === 1) writeCgroupFile(target, value, () => undefined);
    if (settled(f, frozen)) return;
    await sleep(attempt < 10 ? 1 : 10);
  }
  if (frozen) {
    const [, thaw] = freezerWrite(f.version, false);
    writeCgroupFile(target, thaw, () => undefined);
  }
  throw new MiniboxError(`unable to ${frozen ? "freeze" : "thaw"} ${f.dir}: it did not settle`);
}
