/**
 * Bind mounts: the per-container /etc files, volumes and -v host paths.
 * Made in setup, by real root, before the clone: in the container's user
 * namespace these mounts are then locked — its root cannot unmount them or
 * remount them read-write.
 */
import type { SpecMount } from "../spec.js";
import { type PlanContext, parents } from "./context.js";
import { MS, mountStep, propagationSteps, splitOptions } from "./mount-options.js";
import { rootStep } from "./rootfs-steps.js";
import { type CreateStep, mkdirIfMissing, type Step, touchIfMissing } from "./steps.js";

const depth = (m: SpecMount) => m.destination.split("/").filter(Boolean).length;
const idmapped = (ctx: PlanContext, m: SpecMount) =>
  (m.options ?? []).includes("idmap") && ctx.idmapReady;

/**
 * A mount point under an earlier mount (/etc/hosts under a volume on /etc)
 * was hidden by it: make it again, in that mount's source. An idmapped
 * mount refuses files from real root (its uid is unmapped there), so they
 * are made as host 0, which the mount shows as the container's root.
 */
function hiddenMountPointSteps(ctx: PlanContext, m: SpecMount, under: SpecMount): CreateStep[] {
  const owner = idmapped(ctx, under) ? { uid: 0, gid: 0 } : ctx.root;
  const chain = parents("", m.destination.slice(under.destination.length)).map(
    (p) => `${under.source}${p}`,
  );
  const isFile = ctx.mountPoints.files.has(`${ctx.rootfs}${m.destination}`);
  const last = isFile ? chain.pop() : undefined;
  const steps = chain.map((dir) => mkdirIfMissing(dir, owner));
  if (last) steps.push(touchIfMissing(last, owner));
  return steps;
}

/** The bind itself (idmapped: host uid 0 appears as the container's root, as with the layers), then :ro. */
function bindMountSteps(ctx: PlanContext, m: SpecMount): Step[] {
  const { flags, data } = splitOptions(m.options);
  const target = `${ctx.rootfs}${m.destination}`;
  const steps: Step[] = [
    idmapped(ctx, m)
      ? {
          op: "idmap-mount",
          source: m.source,
          target,
          describe: `idmapped bind mount of ${m.source} on ${target} (host 0 → ${ctx.root.uid})`,
        }
      : mountStep(m.source, target, "", flags | MS.BIND, data),
  ];
  // mount(2) ignores MS_RDONLY when it makes a bind mount: read-only takes a remount.
  if (flags & MS.RDONLY)
    steps.push(mountStep("", target, "", MS.BIND | MS.REMOUNT | MS.RDONLY, ""));
  steps.push(...propagationSteps(m.options, target));
  return steps;
}

/**
 * Shallow destinations first (as Docker sorts them), so a volume on /etc
 * does not hide the /etc/hosts bound after it.
 */
export function bindSteps(ctx: PlanContext): Step[] {
  const binds = (ctx.spec.mounts ?? []).filter((x) => x.type === "bind");
  binds.sort((a, b) => depth(a) - depth(b));
  const steps: Step[] = [];
  const mounted: SpecMount[] = [];
  const roots = new Set<string>();
  for (const m of binds) {
    const under = [...mounted].reverse().find((u) => m.destination.startsWith(`${u.destination}/`));
    if (under && !roots.has(under.source)) {
      // Another container sharing the volume may have put symlinks in it.
      roots.add(under.source);
      steps.push(rootStep(under.source, `the source of ${under.destination}`));
    }
    if (under) steps.push(...hiddenMountPointSteps(ctx, m, under));
    mounted.push(m);
    steps.push(...bindMountSteps(ctx, m));
  }
  return steps;
}
