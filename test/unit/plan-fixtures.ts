/**
 * A spec and layout to build plan steps from, shared by the plan-*.test.ts
 * files and the spec, user and security tests; errorOf for their refusals.
 */
import { expect } from "vitest";
import { MiniboxError } from "../../src/errors.js";
import type { ImageConfig } from "../../src/image/manifest.js";
import { type PlanContext, type PlanLayout, planContext } from "../../src/runtime/plan/context.js";
import { type Step, stepFields } from "../../src/runtime/plan/steps.js";
import { generateSpec, type RunSettings } from "../../src/runtime/spec.js";

export const C = "/c";
export const ROOTFS = "/c/rootfs";
export const HOST_ROOT = 1 << 20;
export const IDMAP = { containerID: 0 as const, hostID: HOST_ROOT, size: 65536 };

export function settings(over: Partial<RunSettings> = {}): RunSettings {
  const config: ImageConfig = {
    architecture: "amd64",
    os: "linux",
    config: { Env: ["PATH=/bin"] },
    rootfs: { type: "layers", diff_ids: [] },
  };
  return {
    id: "f".repeat(64),
    name: "n",
    image: { id: `sha256:${"a".repeat(64)}`, ref: "alpine", config },
    rootfs: ROOTFS,
    command: ["true"],
    env: [],
    user: { uid: 0, gid: 0, additionalGids: [], home: "/root", name: "root" },
    hostname: "box",
    tty: false,
    interactive: false,
    readOnly: false,
    capAdd: [],
    capDrop: [],
    limits: {},
    network: "bridge",
    init: false,
    labels: {},
    hostFiles: { hostname: "/c/hostname", hosts: "/c/hosts", resolvConf: "/c/resolv.conf" },
    rlimitHard: { nofile: 1024 },
    ...over,
  };
}

export function layout(over: Partial<PlanLayout> = {}): PlanLayout {
  return {
    containerDir: C,
    layers: ["/l/0", "/l/1"],
    idmappedLayers: true,
    cgroupProcs: ["/cg/cgroup.procs"],
    waitForGo: false,
    init: false,
    interactive: false,
    ...over,
  };
}

export function context(
  over: Partial<RunSettings> = {},
  layoutOver: Partial<PlanLayout> = {},
): PlanContext {
  return planContext(generateSpec(settings(over)), layout(layoutOver));
}

/** "op field field…" per step, as the plan text has it (TAB → space). */
export function lines(steps: Step[]): string[] {
  return steps.map((s) => [s.op, ...stepFields(s)].join(" "));
}

/** The MiniboxError `fn` throws (the test fails if it throws anything else, or nothing). */
export function errorOf(fn: () => unknown): MiniboxError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MiniboxError);
    return e as MiniboxError;
  }
  throw new Error("expected a MiniboxError");
}
