/**
 * minibox-runc's verbs on a live container's cgroup: pause and resume
 * (the freezer), update (new limits through the cgroup driver's own file
 * functions) and ps (the processes in it). Errors are runc's words, which
 * callers (containerd, podman) match on.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { MiniboxError } from "../../errors.js";
import { findFreezer, setFrozen } from "../cgroups/freezer.js";
import { type Cgroup, type CgroupLimits, openCgroup } from "../cgroups/index.js";
import { updateCgroup } from "../cgroups/update.js";
import { filterPsOutput } from "./ps-table.js";
import { initAlive, type RuntimeRecord, readRecord, statusOf } from "./runtime-state.js";

/** The container's cgroup as created (freezer included), reopened from the record. */
export function recordCgroup(record: RuntimeRecord): Cgroup | undefined {
  return openCgroup(record.cgroup.name, { parent: record.cgroup.parent, freezer: true });
}

/** Every process in the container's cgroup (the init alone when the cgroup is gone). */
export function cgroupPids(record: RuntimeRecord): number[] {
  const dir = recordCgroup(record)?.dirs[0];
  if (!dir) return initAlive(record) ? [record.pid] : [];
  const text = readFileSync(`${dir}/cgroup.procs`, "utf8");
  return text.split("\n").filter(Boolean).map(Number);
}

function freezerOf(record: RuntimeRecord) {
  const freezer = findFreezer(record.cgroupDirs);
  if (!freezer) {
    throw new MiniboxError(
      "container has no freezer cgroup (created by an older minibox-runc): cannot pause or resume it",
    );
  }
  return freezer;
}

/** `pause ID`: freeze a created or running container. */
export async function pauseContainer(root: string, id: string): Promise<void> {
  const record = readRecord(root, id);
  const status = statusOf(root, record);
  if (status !== "running" && status !== "created") throw new MiniboxError("container not running");
  await setFrozen(freezerOf(record), true);
}

/** `resume ID`: thaw a paused container. */
export async function resumeContainer(root: string, id: string): Promise<void> {
  const record = readRecord(root, id);
  if (statusOf(root, record) !== "paused") throw new MiniboxError("container not paused");
  await setFrozen(freezerOf(record), false);
}

/** `update ID`: write LIMITS into the container's cgroup. */
export function updateContainer(root: string, id: string, limits: CgroupLimits): void {
  const record = readRecord(root, id);
  if (statusOf(root, record) === "stopped") throw new MiniboxError("container not running");
  const cg = recordCgroup(record);
  if (!cg) throw new MiniboxError(`container ${id}: its cgroup no longer exists`);
  updateCgroup(cg, limits);
}

/** `ps --format json ID`: the PIDs, as a JSON array (go-runc parses it). */
export function psJson(root: string, id: string): string {
  return `${JSON.stringify(cgroupPids(readRecord(root, id)))}\n`;
}

/** `ps ID [ps-args]`: the host's `ps` (default -ef), only the container's lines. */
export function psTable(root: string, id: string, psArgs: string[]): string {
  const pids = cgroupPids(readRecord(root, id));
  const r = spawnSync("ps", psArgs.length > 0 ? psArgs : ["-ef"], { encoding: "utf8" });
  if (r.error) throw new MiniboxError(`ps: ${r.error.message}`);
  if (r.status !== 0) {
    throw new MiniboxError(`ps ${psArgs.join(" ")}: exit status ${r.status}: ${r.stderr.trim()}`);
  }
  return filterPsOutput(r.stdout, pids);
}
