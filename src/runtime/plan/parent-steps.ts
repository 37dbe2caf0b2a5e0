/**
 * What the executor does to the init from outside, between the clone and
 * the init's first step: its uid/gid maps (mapping a range takes privilege
 * in the parent user namespace), its cgroup, the PID report to minibox.
 */
import { mapText, type PlanContext } from "./context.js";
import type { Step, WriteStep } from "./steps.js";

/** "{pid}" in a write step is the init's PID, known only after the clone. */
function idMapSteps(ctx: PlanContext): WriteStep[] {
  if (!ctx.userns) return [];
  const uidMap = mapText(ctx.spec.linux?.uidMappings ?? []);
  const gidMap = mapText(ctx.spec.linux?.gidMappings ?? []);
  return [
    {
      op: "write",
      path: "/proc/{pid}/uid_map",
      data: uidMap,
      describe: `write /proc/{pid}/uid_map: ${uidMap.trim()}`,
    },
    {
      op: "write",
      path: "/proc/{pid}/gid_map",
      data: gidMap,
      describe: `write /proc/{pid}/gid_map: ${gidMap.trim()}`,
    },
  ];
}

/** The init joins its cgroup before it runs anything: its limits hold from its first instruction. */
export function cgroupSteps(procsFiles: string[]): WriteStep[] {
  return procsFiles.map((file) => ({
    op: "write",
    path: file,
    data: "{pid}",
    describe: `join cgroup: write {pid} to ${file}`,
  }));
}

/** uid/gid maps, cgroup, PID report, and (network set-up) a wait for minibox's go. */
export function parentSteps(ctx: PlanContext): Step[] {
  const steps: Step[] = [
    ...idMapSteps(ctx),
    ...cgroupSteps(ctx.layout.cgroupProcs),
    { op: "report-pid", describe: "tell minibox the init's PID" },
  ];
  if (ctx.layout.waitForGo)
    steps.push({ op: "wait-go", describe: "wait for minibox to set up the network" });
  return steps;
}
