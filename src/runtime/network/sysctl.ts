/**
 * The host settings a bridge network needs — net.ipv4.ip_forward, and
 * route_localnet on a bridge used for loopback publishing (see firewall.ts)
 * — set to 1 while minibox has networks, and put back as they were when the
 * last one goes.
 *
 * The value found before minibox's first change is kept in a file under
 * <root> (layout's hostSysctls), so a later command — or the next one after
 * a crash — can restore it. A setting already in the file is never
 * recorded again: enabling twice must not save minibox's own "1" as the
 * host's original value.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Settings by their path under /proc/sys → the value to restore. */
export type SavedSysctls = Record<string, string>;

export const IP_FORWARD = "net/ipv4/ip_forward";

/** route_localnet of one device (its conf directory goes with the device). */
export function routeLocalnetKey(device: string): string {
  return `net/ipv4/conf/${device}/route_localnet`;
}

export interface ForwardingOptions {
  /** Devices (bridges) that get route_localnet=1 for loopback publishing. */
  routeLocalnet?: string[];
  /** Where sysctls are (tests point this at a directory of their own). */
  procSys?: string;
}

/** The settings enableForwarding sets to 1. */
export function forwardingKeys(opts: ForwardingOptions): string[] {
  return [IP_FORWARD, ...(opts.routeLocalnet ?? []).map(routeLocalnetKey)];
}

/**
 * What to record and what to write: each key's current value is recorded
 * unless the file has it already; only keys not at 1 are written.
 */
export function planEnable(
  keys: string[],
  current: Record<string, string>,
  saved: SavedSysctls,
): { saved: SavedSysctls; writes: [string, string][] } {
  const next = { ...saved };
  const writes: [string, string][] = [];
  for (const key of keys) {
    const value = current[key];
    if (value === undefined) continue;
    if (!(key in next)) next[key] = value;
    if (value !== "1") writes.push([key, "1"]);
  }
  return { saved: next, writes };
}

/** What to write back: every recorded setting, to its recorded value. */
export function planRestore(saved: SavedSysctls): [string, string][] {
  return Object.entries(saved);
}

/** The recorded settings; empty when the file is absent or unreadable. */
export function readSaved(stateFile: string): SavedSysctls {
  try {
    const parsed = JSON.parse(readFileSync(stateFile, "utf8")) as { saved?: SavedSysctls };
    return parsed.saved ?? {};
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw e;
  }
}

function readSysctl(procSys: string, key: string): string | undefined {
  try {
    return readFileSync(join(procSys, key), "utf8").trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/** "r+": a setting is never created, a missing one fails with ENOENT. */
function writeSysctl(procSys: string, key: string, value: string): void {
  writeFileSync(join(procSys, key), value, { flag: "r+" });
}

/** Written whole and renamed into place: a crash leaves the old file or the new one. */
function writeSaved(stateFile: string, saved: SavedSysctls): void {
  const tmp = `${stateFile}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify({ saved }, null, 2)}\n`);
  renameSync(tmp, stateFile);
}

/**
 * Record the current values (first time only) in `stateFile`, then set
 * ip_forward (and route_localnet of the given devices) to 1. The record is
 * written before any setting changes, so a crash in between loses nothing.
 */
export function enableForwarding(stateFile: string, opts: ForwardingOptions = {}): void {
  const procSys = opts.procSys ?? "/proc/sys";
  const keys = forwardingKeys(opts);
  const current: Record<string, string> = {};
  for (const key of keys) {
    const value = readSysctl(procSys, key);
    if (value !== undefined) current[key] = value;
  }
  const before = readSaved(stateFile);
  const plan = planEnable(keys, current, before);
  if (JSON.stringify(plan.saved) !== JSON.stringify(before)) writeSaved(stateFile, plan.saved);
  for (const [key, value] of plan.writes) writeSysctl(procSys, key, value);
}

/**
 * Put every recorded setting back and remove `stateFile`; nothing to do
 * without the file. A device gone meanwhile (its bridge deleted) took its
 * setting with it and is skipped.
 */
export function restoreForwarding(stateFile: string, opts: { procSys?: string } = {}): void {
  const procSys = opts.procSys ?? "/proc/sys";
  for (const [key, value] of planRestore(readSaved(stateFile))) {
    try {
      writeSysctl(procSys, key, value);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
  }
  rmSync(stateFile, { force: true });
}

/**
 * Put back only `keys` (those recorded) and forget them, keeping the rest:
 * route_localnet of a bridge that no longer serves a loopback-published
 * port, while its network still has containers.
 */
export function restoreSome(
  stateFile: string,
  keys: readonly string[],
  opts: { procSys?: string } = {},
): void {
  const saved = readSaved(stateFile);
  const mine = keys.filter((k) => k in saved);
  if (mine.length === 0) return;
  const procSys = opts.procSys ?? "/proc/sys";
  for (const key of mine) {
    try {
      writeSysctl(procSys, key, saved[key] as string);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    delete saved[key];
  }
  writeSaved(stateFile, saved);
}
