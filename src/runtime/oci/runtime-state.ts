/**
 * A minibox-runc container on disk: `<root>/<id>/state.json` (what create
 * recorded) and `<root>/<id>/exec.fifo` (there while the init waits for
 * start). Its status is never stored: it is read from the kernel each time,
 * as runc does — the init's PID alive (and the same process: its start time
 * in /proc/PID/stat matches, so a recycled PID is not mistaken for it), the
 * FIFO still there (created) or gone (running), frozen (paused).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { MiniboxError } from "../../errors.js";
import { findFreezer, isPaused } from "../cgroups/freezer.js";
import type { Hooks } from "./bundle-spec.js";
import { checkContainerId } from "./container-id.js";

export type OciStatus = "creating" | "created" | "running" | "paused" | "stopped";

/** What create writes; the OCI state (state.md) is derived from it. */
export interface RuntimeRecord {
  id: string;
  /** The init's host PID. */
  pid: number;
  /** Field 22 of /proc/PID/stat (clock ticks since boot): which process the PID was. */
  startTime: string;
  bundle: string;
  rootfs: string;
  /** RFC 3339, as runc prints it. */
  created: string;
  annotations: Record<string, string>;
  /** The container's cgroup directories, and those made above them (removed at delete). */
  cgroupDirs: string[];
  cgroupAbove: string[];
  /** linux.cgroupsPath split as the cgroup module takes it. */
  cgroup: { parent?: string; name: string };
  /** config.json's ociVersion, echoed by `state`. */
  ociVersion: string;
  /** The hooks still to run: startContainer and poststart (start), poststop (delete). */
  hooks: Hooks;
}

/** The OCI runtime spec's state (runc's field order; annotations only when there are some). */
export interface OciState {
  ociVersion: string;
  id: string;
  pid: number;
  status: OciStatus;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
}

export function containerDir(root: string, id: string): string {
  return path.join(root, checkContainerId(id));
}

export const stateFile = (dir: string) => path.join(dir, "state.json");
/**
 * Compiled seccomp filters, kept under --root for the next create: "@" is
 * not allowed in a container ID, so no container's directory can be it.
 */
export const seccompCacheDir = (root: string) => path.join(root, "@seccomp");

export const execFifo = (dir: string) => path.join(dir, "exec.fifo");
/** The checked spec the container was made from (exec starts from its process, as runc). */
export const specFile = (dir: string) => path.join(dir, "spec.json");

/** The record of container `id`; runc's error when there is none. */
export function readRecord(root: string, id: string): RuntimeRecord {
  const dir = containerDir(root, id);
  try {
    return JSON.parse(readFileSync(stateFile(dir), "utf8")) as RuntimeRecord;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new MiniboxError("container does not exist");
    }
    throw new MiniboxError(`container ${id}: unreadable state (${(err as Error).message})`);
  }
}

/** Written whole or not at all (a temp file renamed over), so a concurrent reader never sees half. */
export function writeRecord(dir: string, record: RuntimeRecord): void {
  const tmp = `${stateFile(dir)}.tmp`;
  writeFileSync(tmp, JSON.stringify(record), { mode: 0o600 });
  renameSync(tmp, stateFile(dir));
}

/** /proc/PID/stat: the state letter and the start time; undefined when there is no such process. */
export function procStat(pid: number): { state: string; startTime: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // comm (field 2) may hold spaces and parentheses: the fields after it start at the last ")".
    const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { state: rest[0] ?? "", startTime: rest[19] ?? "" };
  } catch {
    return undefined;
  }
}

/** Is the record's init still that process, and not a zombie? */
export function initAlive(record: RuntimeRecord): boolean {
  const stat = procStat(record.pid);
  return (
    stat !== undefined &&
    stat.startTime === record.startTime &&
    stat.state !== "Z" &&
    stat.state !== "X"
  );
}

function frozen(record: RuntimeRecord): boolean {
  const freezer = findFreezer(record.cgroupDirs);
  return freezer !== undefined && isPaused(freezer);
}

export function statusOf(root: string, record: RuntimeRecord): OciStatus {
  if (!initAlive(record)) return "stopped";
  if (existsSync(execFifo(containerDir(root, record.id)))) return "created";
  return frozen(record) ? "paused" : "running";
}

/**
 * What native/minibox-runc-fast reads to answer state, start, kill and
 * delete without node: `fast` (the record's few facts, a line each) and
 * `state.tmpl` (state's output with @PID@ and @STATUS@ to fill in).
 */
export function writeFastFiles(dir: string, record: RuntimeRecord): void {
  const hooks = ["startContainer", "poststart", "poststop"].some(
    (k) => record.hooks[k as keyof typeof record.hooks]?.length,
  );
  const lines = [
    `pid ${record.pid}`,
    `start ${record.startTime}`,
    `hooks ${hooks ? 1 : 0}`,
    ...record.cgroupDirs.map((d) => `cgroup ${d}`),
    ...record.cgroupAbove.map((d) => `above ${d}`),
  ];
  writeFileSync(path.join(dir, "fast"), `${lines.join("\n")}\n`, { mode: 0o600 });
  const blank = { ...ociState("", record, "stopped"), pid: "@PID@", status: "@STATUS@" };
  const tmpl = `${JSON.stringify(blank, null, "  ")}\n`.replace('"@PID@"', "@PID@");
  writeFileSync(path.join(dir, "state.tmpl"), tmpl, { mode: 0o600 });
}

/** The state printed by `state` (the same text as state.tmpl filled in). */
export function stateText(state: OciState): string {
  return `${JSON.stringify(state, null, "  ")}\n`;
}

export function ociState(root: string, record: RuntimeRecord, known?: OciStatus): OciState {
  const status = known ?? statusOf(root, record);
  const state: OciState = {
    ociVersion: record.ociVersion,
    id: record.id,
    pid: status === "stopped" ? 0 : record.pid,
    status,
    bundle: record.bundle,
    rootfs: record.rootfs,
    created: record.created,
    owner: "",
  };
  if (Object.keys(record.annotations).length > 0) state.annotations = record.annotations;
  return state;
}
