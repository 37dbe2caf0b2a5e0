/**
 * The spec's mounts are made in the order mounts[] lists them (the runtime
 * spec says MUST, and it decides what hides what: a tmpfs on /run listed
 * before a bind on /run/secrets must not cover it). But two kinds are made
 * in setup, by real root, before the clone: /dev (filled with nodes there,
 * as mknod is not allowed in a user namespace) and the bind mounts (so that
 * in the container's user namespace they are locked). /proc, sysfs, devpts…
 * can only be mounted by the init, in its new namespaces.
 *
 * So at the end of setup each mount setup made at the top (not inside
 * another one setup made) is moved aside (MS_MOVE) to a slot in the
 * container's directory, and the init binds it back (MS_BIND|MS_REC, which
 * a user namespace allows for locked mounts) at its turn in mounts[]; what
 * setup mounted inside it (/etc/hosts in a volume on /etc, a bind under
 * /dev) comes back with it.
 */
import type { SpecMount } from "../spec.js";
import type { PlanContext } from "./context.js";
import { MS, mountStep } from "./mount-options.js";
import type { Step } from "./steps.js";

/** Made in setup: binds, and the /dev tmpfs (device-steps.ts). */
function madeInSetup(m: SpecMount): boolean {
  return m.type === "bind" || m.destination === "/dev";
}

const inside = (m: SpecMount, outer: SpecMount) =>
  m !== outer && (outer.destination === "/" || m.destination.startsWith(`${outer.destination}/`));

/**
 * Each mount setup makes that does not travel with another, with its slot.
 * One travels with a setup mount it lies inside, unless a mount the init
 * makes lies between them (a bind on /dev/shm/x: the init's tmpfs on
 * /dev/shm would cover it if it came back with /dev).
 */
export function stagedMounts(ctx: PlanContext): Map<SpecMount, string> {
  const mounts = ctx.spec.mounts ?? [];
  const made = mounts.filter(madeInSetup);
  const byInit = mounts.filter((m) => !madeInSetup(m));
  const travels = (m: SpecMount) =>
    made.some(
      (outer) => inside(m, outer) && !byInit.some((mid) => inside(mid, outer) && inside(m, mid)),
    );
  const staged = new Map<SpecMount, string>();
  // Slots are named after the mount's index in mounts[].
  mounts.forEach((m, i) => {
    if (madeInSetup(m) && !travels(m)) staged.set(m, `${ctx.layout.containerDir}/staged/${i}`);
  });
  return staged;
}

const depth = (m: SpecMount) => m.destination.split("/").filter(Boolean).length;

/** The end of setup: each top mount moved to its slot (a file for a file's bind). */
export function stageSteps(ctx: PlanContext): Step[] {
  const staged = stagedMounts(ctx);
  if (staged.size === 0) return [];
  const dir = `${ctx.layout.containerDir}/staged`;
  const steps: Step[] = [{ op: "mkdir", path: dir, mode: 0o711, describe: `mkdir ${dir}` }];
  // Deepest first: one inside another is moved out before the outer one goes.
  const deepestFirst = [...staged].sort(([a], [b]) => depth(b) - depth(a));
  for (const [m, slot] of deepestFirst) {
    const target = `${ctx.rootfs}${m.destination}`;
    const root = { uid: 0, gid: 0 };
    steps.push(
      ctx.mountPoints.files.has(target)
        ? { op: "touch", path: slot, mode: 0o600, owner: root, describe: `create ${slot}` }
        : { op: "mkdir", path: slot, mode: 0o711, describe: `mkdir ${slot}` },
      mountStep(target, slot, "", MS.MOVE, ""),
    );
  }
  return steps;
}

/**
 * The init's step for a mount setup made: its bind back from the slot at its
 * turn, or nothing when it came back inside another; undefined for the
 * mounts the init makes itself.
 */
export function unstageSteps(
  ctx: PlanContext,
  staged: Map<SpecMount, string>,
  m: SpecMount,
): Step[] | undefined {
  if (!madeInSetup(m)) return undefined;
  const slot = staged.get(m);
  if (!slot) return [];
  return [mountStep(slot, `${ctx.rootfs}${m.destination}`, "", MS.BIND | MS.REC, "")];
}
