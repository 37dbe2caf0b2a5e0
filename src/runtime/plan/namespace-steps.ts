/**
 * The container's namespaces: created by the clone that starts its init,
 * then entered (cgroup namespace, root of the user namespace) and set up
 * (hostname, loopback) by the init itself.
 */
import type { PlanContext } from "./context.js";
import { containerNetSteps } from "./network-steps.js";
import type { JoinNsStep, NamespaceFlagsStep, OneFieldStep, Step, UserStep } from "./steps.js";

export const CLONE = {
  NEWNS: 0x00020000,
  NEWCGROUP: 0x02000000,
  NEWUTS: 0x04000000,
  NEWIPC: 0x08000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
} as const;

/** OCI namespace types made by the clone; the cgroup namespace is unshared later. */
export const NAMESPACE_FLAGS: Record<string, number> = {
  mount: CLONE.NEWNS,
  uts: CLONE.NEWUTS,
  ipc: CLONE.NEWIPC,
  user: CLONE.NEWUSER,
  pid: CLONE.NEWPID,
  network: CLONE.NEWNET,
};

export function cloneFlagNames(flags: number): string {
  return Object.entries(CLONE)
    .filter(([, bit]) => flags & bit)
    .map(([name]) => `CLONE_${name}`)
    .join("|");
}

/**
 * Just before the clone: the executor's working directory becomes the
 * container's, and the init inherits it in its copy of the mount namespace.
 * From there it reaches its rootfs and staged mounts by relative paths, so
 * in a user namespace it needs no search permission on the directories
 * above (minibox-runc's --root may lie in one only the host's root enters).
 */
export function baseStep(ctx: PlanContext): OneFieldStep {
  const dir = ctx.layout.containerDir;
  return { op: "base", value: dir, describe: `chdir ${dir}: paths under it opened from there` };
}

/** The end of setup: the container's init, in its new namespaces. */
export function cloneStep(ctx: PlanContext): NamespaceFlagsStep {
  let flags = 0;
  for (const ns of ctx.made) flags |= NAMESPACE_FLAGS[ns] ?? 0;
  return { op: "clone", flags, describe: `clone(${cloneFlagNames(flags)})` };
}

/** /proc/PID/ns names of the OCI namespace types. */
const PROC_NS_NAME: Record<string, string> = { network: "net", mount: "mnt" };

function joinStep(type: string, path: string): JoinNsStep {
  return {
    op: "join-ns",
    path,
    type: PROC_NS_NAME[type] ?? type,
    describe: `setns(${path}): join the existing ${type} namespace`,
  };
}

/**
 * A mount namespace given by path is joined first of all, in place of the
 * executor's own (rootfsSteps): the rootfs is assembled in it, and the init
 * stays in it (no CLONE_NEWNS), as runc does.
 */
export function joinMountNamespaceStep(ctx: PlanContext): JoinNsStep | undefined {
  const mount = (ctx.spec.linux?.namespaces ?? []).find((n) => n.type === "mount" && n.path);
  return mount?.path ? joinStep("mount", mount.path) : undefined;
}

/**
 * The other namespaces given by path (a pod's shared network, podman's
 * netns): joined by the executor just before the clone, so the init starts
 * inside them.
 */
export function joinNamespaceSteps(ctx: PlanContext): JoinNsStep[] {
  return (ctx.spec.linux?.namespaces ?? [])
    .filter((n): n is typeof n & { path: string } => Boolean(n.path) && n.type !== "mount")
    .map((n) => joinStep(n.type, n.path));
}

/**
 * Root of the user namespace, so that what is mounted next (devpts, mqueue,
 * shm) belongs to the container's root, not to an unmapped id.
 */
export function becomeNamespaceRootStep(): UserStep {
  return {
    op: "user",
    uid: 0,
    gid: 0,
    describe: "become root of the user namespace (setresuid 0, setresgid 0)",
  };
}

/** The init's first steps: its own cgroup namespace, then root of its user namespace. */
export function enterNamespaceSteps(ctx: PlanContext): Step[] {
  const steps: Step[] = [];
  if (ctx.made.has("cgroup")) {
    // The init is in its cgroup by now (the parent wrote it): that cgroup becomes the namespace's root.
    steps.push({ op: "unshare", flags: CLONE.NEWCGROUP, describe: "unshare(CLONE_NEWCGROUP)" });
  }
  if (ctx.userns) steps.push(becomeNamespaceRootStep());
  return steps;
}

/**
 * Hostname in the container's UTS namespace, loopback in its network
 * namespace, and with bridge networks eth0, eth1… and the default route: as root
 * of the user namespace that owns the netns (CAP_NET_ADMIN there), before
 * the credential steps drop capabilities.
 */
export function utsAndNetworkSteps(ctx: PlanContext): Step[] {
  const steps: Step[] = [];
  const hostname = ctx.spec.hostname;
  // A uts namespace joined by path gets the hostname too (runc sets it there).
  const uts = (ctx.spec.linux?.namespaces ?? []).some((n) => n.type === "uts");
  if (uts && hostname) {
    steps.push({ op: "sethostname", value: hostname, describe: `sethostname ${hostname}` });
  }
  if (ctx.made.has("network")) {
    steps.push({ op: "ifup", value: "lo", describe: "bring up the loopback interface" });
    // The default route goes through the first network that has a way out.
    const routed = ctx.layout.networks?.find((n) => !n.internal);
    for (const net of ctx.layout.networks ?? []) {
      steps.push(...containerNetSteps({ address: net.ip, ...net, defaultRoute: net === routed }));
    }
  }
  return steps;
}
