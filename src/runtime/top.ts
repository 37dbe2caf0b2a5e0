/**
 * `top`: the processes in a container's cgroup, each as the host sees it
 * (uid, PID, parent) and as the container does (its PID inside the PID
 * namespace, the last entry of NSpid).
 */
import { readFileSync } from "node:fs";
import { MiniboxError } from "../errors.js";
import { openCgroup } from "./cgroups/index.js";
import type { ContainerView } from "./lifecycle.js";

export interface ProcessRow {
  /** The real uid, as the host sees it (outside the user namespace). */
  uid: string;
  pid: number;
  ppid: string;
  /** The PID inside the container's PID namespace. */
  containerPid: string;
  /** One letter: R, S, D, Z, … */
  state: string;
  command: string;
}

/** A row from the text of /proc/<pid>/status and /proc/<pid>/cmdline. */
export function parseProcess(pid: number, status: string, cmdline: string): ProcessRow {
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(status)?.[1] ?? "";
  return {
    uid: field("Uid").split(/\s+/)[0] ?? "",
    pid,
    ppid: field("PPid"),
    containerPid: field("NSpid").split(/\s+/).at(-1) ?? "",
    state: field("State").split(" ")[0] ?? "",
    command: cmdline.split("\0").filter(Boolean).join(" "),
  };
}

/** The process's row, or nothing if it has exited meanwhile. */
export function readProcess(pid: number): ProcessRow | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return parseProcess(pid, status, readFileSync(`/proc/${pid}/cmdline`, "utf8"));
  } catch {
    return undefined;
  }
}

/** Every process of a running container, by host PID. */
export function containerProcesses(c: ContainerView): ProcessRow[] {
  const cgroup = c.running && openCgroup(c.id, { parent: c.cgroupParent });
  if (!cgroup) throw new MiniboxError(`container ${c.id.slice(0, 12)} is not running`);
  const pids = new Set<number>();
  for (const file of cgroup.procsFiles) {
    for (const p of readFileSync(file, "utf8").split("\n").filter(Boolean)) pids.add(Number(p));
  }
  return [...pids]
    .sort((a, b) => a - b)
    .map(readProcess)
    .filter((row): row is ProcessRow => row !== undefined);
}
