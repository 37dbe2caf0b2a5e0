/**
 * The root filesystem, assembled by real root in the executor's private
 * mount namespace: the layers (idmapped when the kernel can), the overlay
 * on top of them, and the mount points the image may lack.
 */
import { MiniboxError } from "../../errors.js";
import { mapText, type PlanContext } from "./context.js";
import { MS, mountStep } from "./mount-options.js";
import { joinMountNamespaceStep } from "./namespace-steps.js";
import {
  type BareStep,
  type CreateStep,
  type IdmapUsernsStep,
  mkdirIfMissing,
  type OneFieldStep,
  type Step,
  touchIfMissing,
} from "./steps.js";

type IdMapping = { containerID: number; hostID: number; size: number };

/** Mounts made from here on stay in the executor's namespace: they vanish with it. */
export function mountNamespaceStep(): BareStep {
  return {
    op: "mountns",
    describe: "unshare(CLONE_NEWNS) and make / rprivate: our mounts stay ours and die with us",
  };
}

/** The user namespace idmapped mounts map through: host 0 becomes the container's root. */
export function idmapUsernsStep(
  uidMappings: IdMapping[],
  gidMappings: IdMapping[],
): IdmapUsernsStep {
  const uidMap = mapText(uidMappings);
  return {
    op: "idmap-userns",
    uidMap,
    gidMap: mapText(gidMappings),
    describe: `user namespace for idmapped mounts: uid_map "${uidMap.trim()}"`,
  };
}

/**
 * `root DIR`: DIR holds what an image or a container controls, so the
 * executor resolves every path below it inside it (openat2 RESOLVE_IN_ROOT,
 * native/in-root.c): a symlink there never leads to a host path.
 */
export function rootStep(dir: string, what: string): OneFieldStep {
  return {
    op: "root",
    value: dir,
    describe: `paths under ${dir} (${what}) resolved inside it, never through a symlink out of it`,
  };
}

/**
 * --privileged may use every device (its device cgroup allows all): only
 * then can device nodes in the image be opened (Docker's --privileged lets
 * them work). Otherwise the overlay is nodev: a node an image ships (or the
 * container makes with CAP_MKNOD) opens nothing.
 */
function overlayFlags(ctx: PlanContext): number {
  const rules = ctx.spec.linux?.resources?.devices ?? [];
  const everyDevice = rules.some(
    (r) => r.allow && (r.type ?? "a") === "a" && r.major === undefined && r.access === "rwm",
  );
  return everyDevice ? 0 : MS.NODEV;
}

/** The layers as overlay lower directories, top layer first (as overlayfs wants them). */
function layerSteps(ctx: PlanContext): { steps: Step[]; lowerDirs: string[] } {
  const topFirst = [...ctx.layout.layers].reverse();
  if (!ctx.idmapReady) return { steps: [], lowerDirs: topFirst };
  const linux = ctx.spec.linux;
  const steps: Step[] = [idmapUsernsStep(linux?.uidMappings ?? [], linux?.gidMappings ?? [])];
  const lowerDirs = topFirst.map((layer, i) => {
    const target = `${ctx.layout.containerDir}/lower/${i}`;
    steps.push({
      op: "idmap-mount",
      source: layer,
      target,
      describe: `idmapped mount of ${layer} on ${target} (host 0 → ${ctx.root.uid})`,
    });
    return target;
  });
  return { steps, lowerDirs };
}

/** mount(2) data is one page: beyond that, the overlay cannot list its layers. */
const MAX_OVERLAY_DATA = 4000;

function overlayStep(ctx: PlanContext, lowerDirs: string[]): Step {
  const dir = ctx.layout.containerDir;
  const data = `lowerdir=${lowerDirs.join(":")},upperdir=${dir}/upper,workdir=${dir}/work`;
  if (data.length > MAX_OVERLAY_DATA) {
    throw new MiniboxError(
      `image has too many layers (${ctx.layout.layers.length}) for one overlay mount`,
    );
  }
  return mountStep("overlay", ctx.rootfs, "overlay", overlayFlags(ctx), data);
}

/**
 * Mount points the image may lack, created through the overlay — so into
 * the container's own layer, owned by its root. Those under /dev are made
 * in the /dev tmpfs instead (deviceSteps).
 */
function mountPointSteps(ctx: PlanContext): CreateStep[] {
  const { dirs, files } = ctx.mountPoints;
  const outsideDev = [...dirs].filter((dir) => !dir.startsWith(`${ctx.rootfs}/dev/`));
  return [
    ...outsideDev.map((dir) => mkdirIfMissing(dir, ctx.root)),
    ...[...files].map((file) => touchIfMissing(file, ctx.root)),
  ];
}

/**
 * minibox-runc: the bundle's root directory bound recursively where the
 * overlay would be (pivot_root wants a mount point; runc binds it too).
 */
function bundleRootStep(ctx: PlanContext, dir: string): Step {
  return mountStep(dir, ctx.rootfs, "", MS.BIND | MS.REC, "");
}

/** mountns (or the one joined), the layers, the overlay (or a bundle's rootfs), the mount points. */
export function rootfsSteps(ctx: PlanContext): Step[] {
  const bundleRoot = ctx.layout.rootfsBind;
  const layers = bundleRoot ? { steps: [], lowerDirs: [] } : layerSteps(ctx);
  return [
    joinMountNamespaceStep(ctx) ?? mountNamespaceStep(),
    rootStep(ctx.rootfs, "the container's root filesystem"),
    ...layers.steps,
    bundleRoot ? bundleRootStep(ctx, bundleRoot) : overlayStep(ctx, layers.lowerDirs),
    ...mountPointSteps(ctx),
  ];
}

/** --read-only: after every bind is in place, so they keep their own mode. */
export function readOnlyRootSteps(ctx: PlanContext): OneFieldStep[] {
  if (!ctx.spec.root.readonly) return [];
  return [
    {
      op: "remount-ro",
      value: ctx.rootfs,
      describe: `remount ${ctx.rootfs} read-only (--read-only)`,
    },
  ];
}
