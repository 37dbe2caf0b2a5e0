/**
 * `stats`: CPU, memory and PIDs of containers, read from their cgroups, and
 * network I/O, read from their network namespace. CPU is a rate, so it takes
 * two readings: the share of one CPU's time used between them, as Docker
 * computes it.
 */
import { readFileSync, readlinkSync } from "node:fs";
import { MiniboxError } from "../errors.js";
import type { CgroupStats } from "./cgroups/common.js";
import { openCgroup } from "./cgroups/index.js";
import { type ContainerView, findContainer, listViews } from "./lifecycle.js";

export interface ContainerStats {
  id: string;
  name: string;
  /** Percent of one CPU (200 = two CPUs busy). */
  cpuPercent: number;
  memoryUsage: number;
  memoryLimit: number;
  /** Usage as a percent of the limit; 0 when there is no limit to compare with. */
  memoryPercent: number;
  pids: number;
  /** Bytes received and sent by the container's interfaces (not lo), since it started. */
  netRx: number;
  netTx: number;
}

export interface NetCounters {
  rx: number;
  tx: number;
}

/**
 * The byte counters of /proc/PID/net/dev (the network namespace PID is in),
 * summed over every interface but the loopback: Docker counts the traffic of
 * the container's network endpoints, and lo is none.
 */
export function parseNetDev(text: string): NetCounters {
  let rx = 0;
  let tx = 0;
  for (const line of text.split("\n").slice(2)) {
    const colon = line.indexOf(":");
    if (colon < 0 || line.slice(0, colon).trim() === "lo") continue;
    const fields = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    // Receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes …
    rx += fields[0] ?? 0;
    tx += fields[8] ?? 0;
  }
  return { rx, tx };
}

/**
 * A container's network counters. With --network host its namespace is the
 * host's, whose traffic is not the container's: Docker shows 0B / 0B then.
 */
export function readNetCounters(c: Pick<ContainerView, "pid">): NetCounters {
  if (!c.pid) return { rx: 0, tx: 0 };
  try {
    if (readlinkSync(`/proc/${c.pid}/ns/net`) === readlinkSync("/proc/self/ns/net")) {
      return { rx: 0, tx: 0 };
    }
    return parseNetDev(readFileSync(`/proc/${c.pid}/net/dev`, "utf8"));
  } catch {
    return { rx: 0, tx: 0 }; // the container exited meanwhile
  }
}

/** Docker's `stats` interval between the two readings that make the CPU rate. */
export const SAMPLE_INTERVAL_MS = 500;

/** The containers named, or every running one when none is. */
export async function statsTargets(root: string, names: string[]): Promise<ContainerView[]> {
  return names.length
    ? Promise.all(names.map((n) => findContainer(root, n)))
    : (await listViews(root)).filter((c) => c.running);
}

/** One container's figures from two readings `elapsedNs` apart (either missing: the cgroup is gone). */
export function computeStats(
  c: Pick<ContainerView, "id" | "name">,
  before: Pick<CgroupStats, "cpuUsageNs"> | undefined,
  now: CgroupStats | undefined,
  elapsedNs: number,
  net: NetCounters = { rx: 0, tx: 0 },
): ContainerStats {
  const cpuPercent = now && before ? ((now.cpuUsageNs - before.cpuUsageNs) / elapsedNs) * 100 : 0;
  const memoryUsage = now?.memoryUsage ?? 0;
  const memoryLimit = now?.memoryLimit ?? 0;
  return {
    id: c.id,
    name: c.name,
    cpuPercent,
    memoryUsage,
    memoryLimit,
    memoryPercent: memoryLimit ? (memoryUsage / memoryLimit) * 100 : 0,
    pids: now?.pids ?? 0,
    netRx: net.rx,
    netTx: net.tx,
  };
}

/** Two readings of each container's cgroup `intervalMs` apart. */
export async function sampleStats(
  containers: ContainerView[],
  intervalMs = SAMPLE_INTERVAL_MS,
): Promise<ContainerStats[]> {
  const cgroups = containers.map((c) => openCgroup(c.id, { parent: c.cgroupParent }));
  // The first reading is CPU time only: memory and PIDs are shown as of the
  // second. Reading the memory files twice was ~40% of the cgroup reads.
  const first = cgroups.map((g) => reading(() => g && { cpuUsageNs: g.cpuUsageNs() }));
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, intervalMs));
  const elapsedNs = Number(process.hrtime.bigint() - t0);
  return containers.map((c, i) =>
    computeStats(
      c,
      first[i],
      reading(() => cgroups[i]?.stats()),
      elapsedNs,
      readNetCounters(c),
    ),
  );
}

/**
 * A reading, or undefined when the container exited meanwhile and its
 * cgroup is gone: one container ending must not fail `stats` for all (the
 * more containers, the likelier during the sample interval).
 */
function reading<T>(read: () => T | undefined): T | undefined {
  try {
    return read();
  } catch (err) {
    if (err instanceof MiniboxError) return undefined;
    throw err;
  }
}
