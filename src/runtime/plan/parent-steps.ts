/**
 * What the executor does to the init from outside, between the clone and
 * the init's first step: its uid/gid maps (mapping a range takes privilege
 * in the parent user namespace), its cgroup, the PID report to minibox.
 */
import { mapText, type PlanContext } from "./context.js";
import { vethSteps } from "./network-steps.js";
import type { OneFieldStep, Step, WriteStep } from "./steps.js";

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

/**
 * The first step of setup: a throwaway child of the executor moves itself
 * into the container's cgroup and exits. The kernel's first cgroup move
 * after a quiet spell waits for an RCU grace period (6–20 ms measured, on
 * any hierarchy): the child waits while the executor makes the root
 * filesystem, and the init's join above finds the way clear (~0.1 ms).
 * native/cgroup-warm.c says why and how.
 */
export function warmCgroupSteps(procsFiles: string[]): OneFieldStep[] {
  const first = procsFiles[0];
  if (first === undefined) return [];
  return [
    {
      op: "warm-cgroup",
      value: first,
      describe: `warm up cgroup moves: a throwaway child joins ${first} while the root filesystem is made`,
    },
  ];
}

/**
 * Bridge networks: a veth per network, once the init (and so its netns)
 * exists; after the id maps, so the peer lands in a netns whose owner is complete.
 */
function bridgeSteps(ctx: PlanContext): Step[] {
  if (!ctx.namespaces.has("network")) return [];
  return (ctx.layout.networks ?? []).flatMap((net) =>
    vethSteps({ hostIf: net.hostIf, bridge: net.bridge, mtu: 0, peerIf: net.ifname }),
  );
}

/** process.oomScoreAdj (minibox-runc: an engine's config.json may set it). */
function oomScoreSteps(ctx: PlanContext): WriteStep[] {
  const adj = ctx.spec.process.oomScoreAdj;
  if (adj === undefined) return [];
  const path = "/proc/{pid}/oom_score_adj";
  return [{ op: "write", path, data: String(adj), describe: `write ${path}: ${adj}` }];
}

/** uid/gid maps, cgroup, the veth, PID report, and (network set-up) a wait for minibox's go. */
export function parentSteps(ctx: PlanContext): Step[] {
  const steps: Step[] = [
    ...idMapSteps(ctx),
    ...oomScoreSteps(ctx),
    ...cgroupSteps(ctx.layout.cgroupProcs),
    ...bridgeSteps(ctx),
    { op: "report-pid", describe: "tell minibox the init's PID" },
  ];
  if (ctx.layout.waitForGo)
    steps.push({ op: "wait-go", describe: "wait for minibox to set up the network" });
  return steps;
}
