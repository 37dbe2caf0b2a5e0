/**
 * Mounts the init makes inside its own namespaces (proc, sysfs, devpts,
 * mqueue, shm: they must belong to the new PID, network and IPC
 * namespaces), the masked and read-only paths, and pivot_root into the
 * finished root filesystem.
 */
import type { SpecMount } from "../spec.js";
import { sysctlPath } from "../sysctls.js";
import type { PlanContext } from "./context.js";
import { MS, mountStep, propagationSteps, splitOptions } from "./mount-options.js";
import { stagedMounts, unstageSteps } from "./stage-steps.js";
import { mkdirIfMissing, type Step, touchIfMissing } from "./steps.js";

const V1_ROOT = "/sys/fs/cgroup/";

/**
 * A `cgroup` mount on a v1 host (minibox-runc): mounting every controller
 * at once is refused there, so — as runc does — a tmpfs, and in it each
 * hierarchy's directory of the container bound under the hierarchy's name
 * (memory → the container's memory cgroup): the container reads its own
 * limits at the usual paths, and sees no other cgroup.
 */
function cgroupV1Steps(ctx: PlanContext, m: SpecMount, target: string): Step[] {
  const { flags } = splitOptions(m.options);
  const ro = (flags & MS.RDONLY) !== 0;
  const steps: Step[] = [mountStep("cgroup", target, "tmpfs", flags & ~MS.RDONLY, "mode=755")];
  for (const dir of ctx.layout.cgroupV1Dirs ?? []) {
    if (!dir.startsWith(V1_ROOT)) continue;
    const hierarchy = dir.slice(V1_ROOT.length).split("/")[0] as string;
    const at = `${target}/${hierarchy}`;
    steps.push({ op: "mkdir", path: at, mode: 0o755, describe: `mkdir ${at}` });
    steps.push(mountStep(dir, at, "", MS.BIND | MS.REC, ""));
    if (ro) steps.push({ op: "remount-ro", value: at, describe: `make ${at} read-only` });
  }
  if (ro)
    steps.push({ op: "remount-ro", value: target, describe: `make ${m.destination} read-only` });
  return steps;
}

/**
 * The mount point of a mount inside a tmpfs the init mounted before it
 * (--tmpfs /run with -v x:/run/secrets): the one made in the overlay is
 * hidden now, so it is made again in the tmpfs, owned by the container's
 * root (the init is root of its user namespace: uid 0 is that root).
 */
function pointsInTmpfs(ctx: PlanContext, m: SpecMount, before: SpecMount[]): Step[] {
  const tmpfs = before.filter(
    (o) =>
      o.type === "tmpfs" &&
      o.destination !== "/dev" &&
      m.destination.startsWith(`${o.destination}/`),
  );
  const outer = tmpfs.map((o) => o.destination).sort((a, b) => b.length - a.length)[0];
  if (!outer) return [];
  const root = { uid: 0, gid: 0 };
  const parts = m.destination.slice(outer.length + 1).split("/");
  const steps = parts.map((_, i) =>
    mkdirIfMissing(`${ctx.rootfs}${outer}/${parts.slice(0, i + 1).join("/")}`, root),
  );
  const target = `${ctx.rootfs}${m.destination}`;
  if (ctx.mountPoints.files.has(target)) steps.splice(-1, 1, touchIfMissing(target, root));
  return steps;
}

function mountInside(
  ctx: PlanContext,
  staged: Map<SpecMount, string>,
  m: SpecMount,
  index: number,
): Step[] {
  const steps = mountStepsFor(ctx, staged, m);
  // Nothing to mount: it came back with the mount setup made it in.
  if (steps.length === 0) return [];
  const before = (ctx.spec.mounts ?? []).slice(0, index);
  return [...pointsInTmpfs(ctx, m, before), ...steps];
}

function mountStepsFor(ctx: PlanContext, staged: Map<SpecMount, string>, m: SpecMount): Step[] {
  const target = `${ctx.rootfs}${m.destination}`;
  // Made in setup (/dev, binds) and set aside there: back at its turn.
  const unstaged = unstageSteps(ctx, staged, m);
  if (unstaged) return unstaged;
  if (m.type === "cgroup") return cgroupV1Steps(ctx, m, target);
  if (m.type === "sysfs" && !ctx.namespaces.has("network")) {
    // sysfs can only be mounted by the owner of the network namespace; with
    // --network host, bind the host's (read-only), as runc does.
    // read-only unless the spec says otherwise (--privileged).
    const ro: Step[] = m.options.includes("ro")
      ? [{ op: "remount-ro", value: target, describe: `make ${m.destination} read-only` }]
      : [];
    return [mountStep("/sys", target, "", MS.BIND | MS.REC, ""), ...ro];
  }
  const { flags, data } = splitOptions(m.options);
  return [
    mountStep(m.source || m.type || "none", target, m.type ?? "", flags, data),
    ...propagationSteps(m.options, target),
  ];
}

/**
 * Masked paths get /dev/null bound over them — the executor's own, which it
 * checks is c 1:3 on the descriptor: never the container's /dev/null, which
 * a volume on /dev or the image could make a symlink to a host file
 * (CVE-2025-31133). Read-only paths get a read-only remount.
 */
function protectedPathSteps(ctx: PlanContext): Step[] {
  const { rootfs } = ctx;
  const linux = ctx.spec.linux;
  return [
    ...(linux?.maskedPaths ?? []).map(
      (path): Step => ({
        op: "mask",
        path: `${rootfs}${path}`,
        with: "/dev/null",
        describe: `mask ${path} (the executor's /dev/null over it)`,
      }),
    ),
    ...(linux?.readonlyPaths ?? []).map(
      (path): Step => ({
        op: "remount-ro",
        value: `${rootfs}${path}`,
        describe: `make ${path} read-only`,
      }),
    ),
  ];
}

/**
 * --sysctl: written by the init into its own /proc, once that is mounted (so
 * the values land in the container's namespaces) and before /proc/sys is
 * made read-only.
 */
function sysctlSteps(ctx: PlanContext): Step[] {
  return Object.entries(ctx.spec.linux?.sysctl ?? {}).map(([name, value]): Step => {
    const describe = `sysctl ${name}=${value}`;
    // Its /proc file belongs to the host's root even in the container's UTS namespace.
    if (name === "kernel.domainname") return { op: "setdomainname", value, describe };
    const path = sysctlPath(`${ctx.rootfs}/proc`, name);
    return { op: "write", path, data: value, describe };
  });
}

/** The spec's mounts in their order (setup's brought back), sysctls, protected paths, pivot_root. */
export function childMountSteps(ctx: PlanContext): Step[] {
  const staged = stagedMounts(ctx); // once: which of setup's mounts come back where
  return [
    ...(ctx.spec.mounts ?? []).flatMap((m, i) => mountInside(ctx, staged, m, i)),
    ...sysctlSteps(ctx),
    ...protectedPathSteps(ctx),
    {
      op: "pivot_root",
      value: ctx.rootfs,
      describe: `pivot_root to ${ctx.rootfs}, old root detached`,
    },
    // linux.rootfsPropagation (minibox-runc): on the new "/", now that it is the root.
    ...propagationSteps([ctx.spec.linux?.rootfsPropagation ?? ""], "/"),
  ];
}
