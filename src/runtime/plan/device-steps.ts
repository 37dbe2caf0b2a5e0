/**
 * /dev: a tmpfs with the usual devices and links, made in setup by real
 * root because mknod is not allowed inside a user namespace.
 */
import type { SpecDevice } from "../devices.js";
import type { SpecMount } from "../spec.js";
import { type PlanContext, parents } from "./context.js";
import { mountStep, splitOptions } from "./mount-options.js";
import type { ChownStep, Step } from "./steps.js";

/** The devices every container gets in its /dev, as in Docker. */
const DEVICES: { name: string; major: number; minor: number }[] = [
  { name: "null", major: 1, minor: 3 },
  { name: "zero", major: 1, minor: 5 },
  { name: "full", major: 1, minor: 7 },
  { name: "random", major: 1, minor: 8 },
  { name: "urandom", major: 1, minor: 9 },
  { name: "tty", major: 5, minor: 0 },
];
const DEV_LINKS: [target: string, name: string][] = [
  ["pts/ptmx", "ptmx"],
  ["/proc/self/fd", "fd"],
  ["/proc/self/fd/0", "stdin"],
  ["/proc/self/fd/1", "stdout"],
  ["/proc/self/fd/2", "stderr"],
];
const CHAR_DEVICE_RW = 0o20000 | 0o666;
const S_IFCHR = 0o20000;
const S_IFBLK = 0o60000;

/** Under a user namespace, what real root made here is handed to the container's root. */
function toContainerRoot(ctx: PlanContext, path: string): ChownStep[] {
  if (!ctx.userns) return [];
  const { uid, gid } = ctx.root;
  return [{ op: "chown", path, uid, gid, describe: `chown ${path} to the container's root` }];
}

function devTmpfsSteps(ctx: PlanContext, dev: SpecMount): Step[] {
  const { flags, data } = splitOptions(dev.options);
  const owner = ctx.userns ? `,uid=${ctx.root.uid},gid=${ctx.root.gid}` : "";
  const dir = `${ctx.rootfs}/dev`;
  const steps: Step[] = [
    mountStep(dev.source || "tmpfs", dir, dev.type ?? "tmpfs", flags, `${data}${owner}`),
  ];
  const added = new Set((ctx.spec.linux?.devices ?? []).map((d) => d.path));
  for (const { name, major, minor } of DEVICES) {
    // A --device at the same path replaces the default node (runc does the same).
    if (added.has(`/dev/${name}`)) continue;
    const path = `${dir}/${name}`;
    const describe = `mknod ${path} c ${major} ${minor}`;
    steps.push({ op: "mknod", path, mode: CHAR_DEVICE_RW, major, minor, describe });
    steps.push(...toContainerRoot(ctx, path));
  }
  for (const [target, name] of DEV_LINKS) {
    const path = `${dir}/${name}`;
    steps.push({ op: "symlink", target, path, describe: `symlink /dev/${name} → ${target}` });
    steps.push(...toContainerRoot(ctx, path));
  }
  for (const m of ctx.spec.mounts.filter((x) => x.destination.startsWith("/dev/"))) {
    const path = `${ctx.rootfs}${m.destination}`;
    steps.push({ op: "mkdir", path, mode: 0o755, describe: `mkdir ${path}` });
  }
  return steps;
}

/**
 * A --device node (always under the fresh /dev tmpfs: devices.ts refuses
 * other paths): its directories, the node with the host's type, numbers and
 * mode; owned like the host's node, or under a user namespace by the
 * container's root, which the user asked to have it.
 */
function addedDeviceSteps(ctx: PlanContext, d: SpecDevice): Step[] {
  const path = `${ctx.rootfs}${d.path}`;
  const dirs = parents(ctx.rootfs, d.path).slice(0, -1);
  const steps: Step[] = dirs
    .filter((dir) => dir.startsWith(`${ctx.rootfs}/dev/`))
    .flatMap((dir): Step[] => [
      { op: "mkdir", path: dir, mode: 0o755, describe: `mkdir ${dir}` },
      ...toContainerRoot(ctx, dir),
    ]);
  const mode = (d.type === "b" ? S_IFBLK : S_IFCHR) | d.fileMode;
  const describe = `mknod ${path} ${d.type} ${d.major} ${d.minor} (--device)`;
  steps.push({ op: "mknod", path, mode, major: d.major, minor: d.minor, describe });
  if (ctx.userns) steps.push(...toContainerRoot(ctx, path));
  else
    steps.push({
      op: "chown",
      path,
      uid: d.uid,
      gid: d.gid,
      describe: `chown ${path} to ${d.uid}:${d.gid}, as on the host`,
    });
  return steps;
}

/** The /dev tmpfs (if the spec mounts one), then the container's root made owner of its mount points. */
export function deviceSteps(ctx: PlanContext): Step[] {
  const dev = (ctx.spec.mounts ?? []).find((m) => m.destination === "/dev");
  const steps = dev ? devTmpfsSteps(ctx, dev) : [];
  if (dev) steps.push(...(ctx.spec.linux?.devices ?? []).flatMap((d) => addedDeviceSteps(ctx, d)));
  for (const dir of ctx.mountPoints.dirs) {
    if (dir.startsWith(`${ctx.rootfs}/dev/`)) steps.push(...toContainerRoot(ctx, dir));
  }
  return steps;
}
