/**
 * From an OCI runtime spec to the executor's plan: the exact list of kernel
 * steps, in order, that native/minibox-exec performs. A pure function — the
 * same spec and layout always give the same plan — so the order of
 * operations can be read (and tested) here, in one place; each concern's
 * steps are in a module of src/runtime/plan/.
 *
 * The plan has three sections (see native/minibox-exec.c):
 *   setup   the executor, as real root, in a private mount namespace: it
 *           starts paying the first cgroup move's wait (warm-cgroup),
 *           idmaps the layers, mounts the overlay, fills /dev, binds the
 *           volumes and per-container /etc files, sets /dev and the binds
 *           aside until their turn (plan/stage-steps.ts); then clones
 *           the container's init
 *   parent  the executor, after the clone: uid/gid maps, cgroup membership
 *   child   the init, in its new namespaces: the spec's other mounts in
 *           mounts[] order (/proc, /dev back, devpts, /sys…, binds back), masked
 *           paths, pivot_root, hostname, loopback, user, capabilities,
 *           the seccomp filter, exec
 * Mounts made in setup live in the executor's private mount namespace, so
 * they vanish with the container's processes even if minibox is SIGKILLed.
 */
import { bindSteps } from "./plan/bind-steps.js";
import { childMountSteps } from "./plan/child-mount-steps.js";
import { type PlanLayout, planContext } from "./plan/context.js";
import { credentialSteps } from "./plan/credential-steps.js";
import { deviceSteps } from "./plan/device-steps.js";
import { chdirStep, execSteps } from "./plan/exec-steps.js";
import {
  baseStep,
  cloneStep,
  enterNamespaceSteps,
  joinNamespaceSteps,
  utsAndNetworkSteps,
} from "./plan/namespace-steps.js";
import { outputSteps } from "./plan/output-steps.js";
import { parentSteps, warmCgroupSteps } from "./plan/parent-steps.js";
import { holdPortSteps } from "./plan/port-steps.js";
import { readOnlyRootSteps, rootfsSteps } from "./plan/rootfs-steps.js";
import { stageSteps } from "./plan/stage-steps.js";
import { consoleSteps, stdinSteps, waitStartSteps } from "./plan/stdio-steps.js";
import { type Plan, toPlan } from "./plan/steps.js";
import type { CompiledFilter } from "./seccomp/compile.js";
import type { Spec } from "./spec.js";

export type { PlanLayout } from "./plan/context.js";
export { serialisePlan } from "./plan/serialise.js";
export type { Plan, PlanStep, Step } from "./plan/steps.js";

export function buildPlan(spec: Spec, layout: PlanLayout): Plan {
  const ctx = planContext(spec, layout);
  const process = spec.process;
  const setup = [
    ...warmCgroupSteps(layout.cgroupProcs),
    ...holdPortSteps(layout.heldPorts ?? []),
    ...rootfsSteps(ctx),
    ...deviceSteps(ctx),
    ...bindSteps(ctx),
    ...readOnlyRootSteps(ctx),
    ...outputSteps(ctx),
    ...stageSteps(ctx),
    ...joinNamespaceSteps(ctx),
    baseStep(ctx),
    cloneStep(ctx),
  ];
  const child = [
    ...enterNamespaceSteps(ctx),
    ...childMountSteps(ctx),
    // After pivot_root: the container's /dev/null, not a descriptor of the host's /dev.
    ...stdinSteps(process.terminal, layout.interactive),
    ...consoleSteps(process.terminal, layout.consoleSocket ? "the console socket" : "minibox"),
    ...utsAndNetworkSteps(ctx),
    chdirStep(process.cwd),
    ...credentialSteps({ ...process, seccomp: filterFor(spec, layout.seccomp) }),
    ...waitStartSteps(layout.startFifo),
    ...execSteps({
      argv: process.args,
      env: process.env ?? [],
      init: layout.init,
      passFds: layout.passFds,
    }),
  ];
  return toPlan({ setup, parent: parentSteps(ctx), child });
}

/**
 * The compiled linux.seccomp the caller brings (seccomp/cache.ts compiles or
 * finds it: the compiler is not loaded on a cache hit); none when unconfined.
 * A spec with a filter and no program is a bug, never a run without a filter.
 */
export function filterFor(spec: Spec, compiled: CompiledFilter | undefined) {
  if (spec.linux?.seccomp && !compiled)
    throw new Error("plan: the spec has linux.seccomp but no compiled filter was given");
  return spec.linux?.seccomp ? compiled : undefined;
}
