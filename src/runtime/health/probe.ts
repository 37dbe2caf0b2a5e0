/**
 * The health check's two files in the container's directory: the exec plan
 * the monitor runs every interval (written here once the container runs, as
 * it names the init's PID), and Docker's State.Health, which the monitor
 * writes after each probe (native/health.c) and inspect, ps and wait read.
 */
import { readFile, rename, writeFile } from "node:fs/promises";
import type { EventActor } from "../../events/journal.js";
import { type ContainerPaths, rootLayout } from "../../layout.js";
import { buildExecPlan } from "../exec.js";
import type { PlanLayout } from "../plan/context.js";
import { serialisePlan } from "../plan.js";
import { compiledSeccomp } from "../seccomp/cache.js";
import type { Spec } from "../spec.js";
import { effectiveTimings, type HealthConfig, healthActive, probeArgv } from "./config.js";
import { formatGoDuration } from "./duration.js";

/** What the plan's `health` step says (undefined: no health check). */
export function healthLayout(
  paths: ContainerPaths,
  config: HealthConfig | undefined,
  events: { file: string; actor: EventActor },
): PlanLayout["health"] {
  if (!healthActive(config)) return undefined;
  const t = effectiveTimings(config);
  const ms = (ns: number) => Math.max(1, Math.round(ns / 1e6));
  return {
    planFile: paths.healthPlan,
    stateFile: paths.health,
    intervalMs: ms(t.interval),
    timeoutMs: ms(t.timeout),
    startPeriodMs: Math.round(t.startPeriod / 1e6),
    startIntervalMs: ms(t.startInterval),
    retries: t.retries,
    timeoutText: formatGoDuration(t.timeout),
    eventsFile: events.file,
    actor: JSON.stringify(events.actor),
  };
}

/**
 * The probe's plan: `exec` of the check's command into the container whose
 * init is `pid` (its cgroup, namespaces, user, capabilities, seccomp
 * filter), written whole and renamed so the monitor never reads half of it.
 */
export async function writeProbePlan(
  root: string,
  paths: ContainerPaths,
  spec: Spec,
  config: HealthConfig | undefined,
  pid: number,
  cgroupProcs: string[],
  shell?: string[],
): Promise<void> {
  if (!healthActive(config)) return;
  const seccomp =
    spec.linux.seccomp &&
    (await compiledSeccomp(rootLayout(root).seccompCache, spec.linux.seccomp, process.arch)).filter;
  const plan = buildExecPlan(
    spec,
    pid,
    cgroupProcs,
    { command: probeArgv(config, shell), tty: false, interactive: false, env: [], detach: false },
    spec.process.user,
    seccomp,
  );
  const tmp = `${paths.healthPlan}.tmp`;
  await writeFile(tmp, serialisePlan(plan).text);
  await rename(tmp, paths.healthPlan);
}

export type HealthStatus = "starting" | "healthy" | "unhealthy";

/** Docker's State.Health. */
export interface HealthState {
  Status: HealthStatus;
  FailingStreak: number;
  Log: { Start: string; End: string; ExitCode: number; Output: string }[];
}

/**
 * State.Health of a container with a health check (undefined without one,
 * as Docker leaves it out). A container that is not running is
 * "unhealthy", as Docker marks it when its health monitor stops.
 */
export async function readHealth(
  paths: ContainerPaths,
  config: HealthConfig | undefined,
  running: boolean,
): Promise<HealthState | undefined> {
  if (!healthActive(config)) return undefined;
  let state: HealthState | undefined;
  try {
    state = JSON.parse(await readFile(paths.health, "utf8")) as HealthState;
  } catch {
    // Not started yet, or the monitor has not written it yet.
  }
  if (!running) return state ? { ...state, Status: "unhealthy" } : undefined;
  return state ?? { Status: "starting", FailingStreak: 0, Log: [] };
}

/** ps's STATUS suffix: " (healthy)", " (unhealthy)", " (health: starting)". */
export function healthSuffix(h: HealthState | undefined): string {
  if (!h) return "";
  return h.Status === "starting" ? " (health: starting)" : ` (${h.Status})`;
}
