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
const S_IFIFO = 0o10000;
const NODE_TYPE = { c: S_IFCHR, b: S_IFBLK, p: S_IFIFO } as const;

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
  steps.push(...specDeviceSteps(ctx, dir));
  for (const m of ctx.spec.mounts.filter((x) => x.destination.startsWith("/dev/"))) {
    const path = `${ctx.rootfs}${m.destination}`;
    steps.push({ op: "mkdir", path, mode: 0o755, describe: `mkdir ${path}` });
  }
  return steps;
}

/**
 * linux.devices (--device's nodes; with --privileged the host's too), made
 * by real root with the host's type, numbers and mode under the fresh /dev
 * tmpfs. One at a default node's path replaces it (runc does the same); the
 * links (/dev/ptmx, /dev/fd…) are kept.
 */
function specDeviceSteps(ctx: PlanContext, dir: string): Step[] {
  // The default nodes a spec device replaces were not made (devTmpfsSteps); the links stay.
  const taken = new Set(DEV_LINKS.map(([, name]) => name));
  const made = new Set<string>();
  const steps: Step[] = [];
  for (const d of ctx.spec.linux.devices ?? []) {
    const rel = d.path.replace(/^\/dev\//, "");
    if (!d.path.startsWith("/dev/") || taken.has(rel)) continue;
    for (const sub of parents(dir, rel).slice(0, -1)) {
      if (made.has(sub)) continue;
      made.add(sub);
      steps.push({ op: "mkdir", path: sub, mode: 0o755, describe: `mkdir ${sub}` });
      steps.push(...toContainerRoot(ctx, sub));
    }
    steps.push(...deviceNodeSteps(ctx, `${dir}/${rel}`, d));
  }
  return steps;
}

/**
 * One node, owned by the spec's uid/gid as seen inside the container (under
 * a user namespace: through its mapping). No owner in the spec: it stays the
 * host root's (--privileged's host nodes under a user namespace: unusable).
 */
function deviceNodeSteps(ctx: PlanContext, path: string, d: SpecDevice): Step[] {
  const mode = NODE_TYPE[d.type] | (d.fileMode & 0o7777);
  // A FIFO has no device numbers: mknod(2) ignores dev for S_IFIFO.
  const { major, minor } = d.type === "p" ? { major: 0, minor: 0 } : d;
  const steps: Step[] = [
    {
      op: "mknod",
      path,
      mode,
      major,
      minor,
      describe: d.type === "p" ? `mknod ${path} p` : `mknod ${path} ${d.type} ${major} ${minor}`,
    },
  ];
  if (d.uid === undefined || d.gid === undefined) return steps;
  const uid = ctx.userns ? ctx.root.uid + d.uid : d.uid;
  const gid = ctx.userns ? ctx.root.gid + d.gid : d.gid;
  const describe = `chown ${path} to ${d.uid}:${d.gid} in the container`;
  steps.push({ op: "chown", path, uid, gid, describe });
  return steps;
}

const specDev = (ctx: PlanContext) => (ctx.spec.mounts ?? []).find((m) => m.destination === "/dev");

/** The /dev tmpfs (if the spec mounts one), then the container's root made owner of its mount points. */
export function deviceSteps(ctx: PlanContext): Step[] {
  const dev = specDev(ctx);
  const steps = dev ? devTmpfsSteps(ctx, dev) : [];
  for (const dir of ctx.mountPoints.dirs) {
    if (dir.startsWith(`${ctx.rootfs}/dev/`)) steps.push(...toContainerRoot(ctx, dir));
  }
  return steps;
}
