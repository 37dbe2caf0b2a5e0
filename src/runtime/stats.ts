/**
 * `stats`: CPU, memory and PIDs of containers, read from their cgroups. CPU
 * is a rate, so it takes two readings: the share of one CPU's time used
 * between them, as Docker computes it.
 */
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
  before: CgroupStats | undefined,
  now: CgroupStats | undefined,
  elapsedNs: number,
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
  };
}

/** Two readings of each container's cgroup `intervalMs` apart. */
export async function sampleStats(
  containers: ContainerView[],
  intervalMs = SAMPLE_INTERVAL_MS,
): Promise<ContainerStats[]> {
  const cgroups = containers.map((c) => openCgroup(c.id, { parent: c.cgroupParent }));
  const first = cgroups.map((g) => g?.stats());
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, intervalMs));
  const elapsedNs = Number(process.hrtime.bigint() - t0);
  return containers.map((c, i) => computeStats(c, first[i], cgroups[i]?.stats(), elapsedNs));
}
