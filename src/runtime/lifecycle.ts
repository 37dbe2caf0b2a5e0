/**
 * Containers after `run`: find one by ID or name, see whether it still runs,
 * record its exit, stop, kill and remove it.
 *
 * Who records an exit: for a foreground run, the minibox that waits for it;
 * for a detached one (-d), the monitor writes exit.json and then execs its
 * exit hook, `minibox container-exited <id>`: onContainerExited below records
 * the exit (finalizeExit) and starts the container again when its restart
 * policy says so. When the watcher died without recording anything, the next
 * command that looks does it: sweepContainers below (run, ps, container
 * prune) or waitExited (stop, rm -f, wait).
 */
import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { MiniboxError } from "../errors.js";
import {
  containerActor,
  recordContainerEvent,
  recordDie,
  recordKill,
} from "../events/container-events.js";
import { recordEvent } from "../events/journal.js";
import type { Store } from "../image/store.js";
import { rootLayout } from "../layout.js";
import { withLock } from "../sys/lock.js";
import { openCgroup } from "./cgroups/index.js";
import { namePath } from "./names.js";
import { reconcileEndpoints } from "./network/endpoint.js";
import { restartAfterBackOff, shouldRestart } from "./restart.js";
import { containerPaths } from "./rootfs.js";
import type { Spec } from "./spec.js";
import {
  alive,
  type ContainerState,
  containerIds,
  listContainers,
  readState,
  removeContainerDir,
  writeState,
} from "./state.js";
import { removeAnonymousVolumes } from "./volumes.js";

export interface ExitRecord {
  exitCode: number;
  signal: number | null;
  finishedAt: string;
}

/** A container as commands see it: its state, with an exit the monitor recorded applied. */
export interface ContainerView extends ContainerState {
  running: boolean;
}

function readExit(root: string, id: string): ExitRecord | undefined {
  try {
    return JSON.parse(readFileSync(containerPaths(root, id).exit, "utf8")) as ExitRecord;
  } catch {
    return undefined;
  }
}

/** Is anybody still watching it (its foreground minibox, or its monitor)? */
function watched(state: ContainerState): boolean {
  return state.monitorPid ? alive(state.monitorPid) : alive(state.miniboxPid);
}

export function viewOf(root: string, state: ContainerState): ContainerView {
  if (state.status === "running") {
    const exit = readExit(root, state.id);
    if (exit) {
      return {
        ...state,
        status: "exited",
        exitCode: exit.exitCode,
        finishedAt: exit.finishedAt,
        running: false,
      };
    }
    if (!watched(state)) {
      return {
        ...state,
        status: "exited",
        error: state.error ?? "the container's monitor died",
        running: false,
      };
    }
  }
  return { ...state, running: state.status === "running" };
}

export async function listViews(root: string): Promise<ContainerView[]> {
  return viewsOf(root, await listContainers(root));
}

function viewsOf(root: string, states: ContainerState[]): ContainerView[] {
  return states.filter((s) => s.imageId).map((s) => viewOf(root, s));
}

/** Container `id`'s view, when it exists and is more than a reserved name. */
function viewById(root: string, id: string): ContainerView | undefined {
  const state = readState(root, id);
  return state?.imageId ? viewOf(root, state) : undefined;
}

/**
 * By full ID, unique ID prefix, or name — like Docker. Reads only the
 * container asked for: the name's file gives its ID, and a prefix is matched
 * against the directory listing; only matches have their state read (with
 * 100 containers, reading them all made `inspect C` ~2× slower).
 */
export async function findContainer(root: string, idOrName: string): Promise<ContainerView> {
  const byName = await readFile(namePath(root, idOrName.replace(/^\//, "")), "utf8").catch(
    () => "",
  );
  const named = byName.trim() ? viewById(root, byName.trim()) : undefined;
  if (named) return named;
  const matches = containerIds(root)
    .filter((id) => id.startsWith(idOrName))
    .map((id) => viewById(root, id))
    .filter((c): c is ContainerView => c !== undefined);
  if (matches.length === 1 && idOrName.length > 0) return matches[0] as ContainerView;
  if (matches.length > 1) {
    throw new MiniboxError(
      `multiple containers match "${idOrName}"`,
      "give more of the ID, or the name",
    );
  }
  throw new MiniboxError(`no such container: ${idOrName}`, "see 'minibox ps -a'");
}

export async function readSpec(root: string, id: string): Promise<Spec> {
  return JSON.parse(await readFile(containerPaths(root, id).config, "utf8")) as Spec;
}

/** One container's changes are serialised: the exit hook, rm -f, a sweep and network connect may race. */
export function lockOf(root: string, id: string): string {
  return rootLayout(root).lock(`container-${id}`);
}

/**
 * Record the exit (from exit.json, or as "killed" when there is none), check
 * for an OOM kill, remove the cgroup, and apply --rm. Idempotent.
 */
export async function finalizeExit(
  root: string,
  id: string,
  reason?: string,
  /** The monitor's PID when called from its exit hook (exec keeps the PID). */
  monitorPid?: number,
): Promise<boolean> {
  return withLock(lockOf(root, id), async () => {
    const paths = containerPaths(root, id);
    let state: ContainerState;
    try {
      state = JSON.parse(await readFile(paths.state, "utf8"));
    } catch {
      return false; // removed meanwhile
    }
    if (state.status === "exited") return false;
    // A hook that comes late, after the container was already stopped and
    // started again under a new monitor, must not touch the new run.
    if (monitorPid !== undefined && state.monitorPid !== monitorPid) return false;
    const cgroup = openCgroup(id, { parent: state.cgroupParent });
    const oom = cgroup?.oomKilled() ?? false;
    await cgroup?.destroy().catch(() => undefined);
    const exit = readExit(root, id);
    state.status = "exited";
    state.exitCode = oom ? 137 : (exit?.exitCode ?? 137);
    state.finishedAt = exit?.finishedAt ?? new Date().toISOString();
    state.oomKilled = oom;
    if (!exit) state.error = reason ?? "minibox was killed while the container ran";
    await releaseNetworkOf(state);
    // Exactly once per run: a second finalizeExit finds it exited above.
    await recordDie(root, state);
    if (state.autoRemove) {
      const actor = containerActor(root, state);
      await removeContainerDir(paths, state.name);
      await removeAnonymousVolumes(root, state.mounts);
      await recordEvent(root, "container", "destroy", actor);
      return false;
    }
    const restart = shouldRestart(state);
    if (restart) state.restartCount = (state.restartCount ?? 0) + 1;
    await writeState(paths, state);
    return restart;
  });
}

/**
 * The monitor's exit hook (the hidden `container-exited` command): record the
 * exit and, when the restart policy asks for it, start the next run after
 * the back-off. `monitorPid` names the run that ended.
 */
export async function onContainerExited(
  store: Store,
  id: string,
  monitorPid: number,
): Promise<void> {
  if (!(await finalizeExit(store.root, id, undefined, monitorPid))) return;
  const state = await findContainer(store.root, id);
  await restartAfterBackOff(store, id, state.restartCount);
}

/** Remember that the user stopped it, so a restart policy does not bring it back. */
export async function markStopped(root: string, id: string): Promise<void> {
  await withLock(lockOf(root, id), async () => {
    const paths = containerPaths(root, id);
    const state = JSON.parse(await readFile(paths.state, "utf8")) as ContainerState;
    state.manuallyStopped = true;
    await writeState(paths, state);
  });
}

/** `rename`: claim the new name, then free the old one. */
export async function renameContainer(
  root: string,
  c: ContainerView,
  newName: string,
): Promise<void> {
  const { claimNameOnly } = await import("./names.js");
  await claimNameOnly(root, newName, c.id);
  await withLock(lockOf(root, c.id), async () => {
    const paths = containerPaths(root, c.id);
    const state = JSON.parse(await readFile(paths.state, "utf8")) as ContainerState;
    const old = state.name;
    state.name = newName;
    await writeState(paths, state);
    const { rm } = await import("node:fs/promises");
    if ((await readFile(namePath(root, old), "utf8").catch(() => "")).trim() === c.id) {
      await rm(namePath(root, old), { force: true });
    }
    // Docker's oldName keeps the leading slash of its internal names.
    await recordContainerEvent(root, "rename", state, { oldName: `/${old}` });
  });
}

export function parseSignal(text: string): NodeJS.Signals | number {
  if (/^\d+$/.test(text)) return Number(text);
  const name = text.toUpperCase().startsWith("SIG")
    ? text.toUpperCase()
    : `SIG${text.toUpperCase()}`;
  const known = [
    "SIGTERM",
    "SIGKILL",
    "SIGINT",
    "SIGHUP",
    "SIGQUIT",
    "SIGUSR1",
    "SIGUSR2",
    "SIGSTOP",
    "SIGCONT",
  ];
  if (!known.includes(name))
    throw new MiniboxError(
      `invalid signal ${JSON.stringify(text)}`,
      "use a name like TERM or a number",
    );
  return name as NodeJS.Signals;
}

export function signalContainer(c: ContainerView, signal: NodeJS.Signals | number): void {
  if (!c.running || !c.pid) throw new MiniboxError(`container ${c.id.slice(0, 12)} is not running`);
  try {
    process.kill(c.pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

/** Send a signal and journal it (`kill`, and stop's and rm -f's signals, as Docker's events show them). */
export async function killContainer(
  root: string,
  c: ContainerView,
  signal: NodeJS.Signals | number,
): Promise<void> {
  signalContainer(c, signal);
  await recordKill(root, c, signal);
}

/** Wait until the container's exit is recorded; true if it was within `timeoutMs`. */
export async function waitExited(
  root: string,
  id: string,
  timeoutMs = Number.POSITIVE_INFINITY,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let delay = 10;
  for (;;) {
    const state = readState(root, id);
    if (!state) return true; // removed (--rm)
    const view = viewOf(root, state);
    if (!view.running) {
      if (state.status !== "exited") await finalizeExit(root, id, view.error);
      return true;
    }
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 100);
  }
}

/** Until process `pid` has exited (true), or the timeout passed (false). */
async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; alive(pid); delay = Math.min(delay * 2, 100)) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, delay));
  }
  return true;
}

/** `stop`: the stop signal (SIGTERM unless the image says otherwise), then SIGKILL after the timeout. */
export async function stopContainer(
  root: string,
  c: ContainerView,
  timeoutSeconds: number,
): Promise<void> {
  if (!c.running) return;
  await markStopped(root, c.id);
  const spec = await readSpec(root, c.id).catch(() => undefined);
  const stopSignal = spec?.annotations?.["minibox.stopsignal"];
  await killContainer(root, c, stopSignal ? parseSignal(stopSignal) : "SIGTERM");
  if (!(await waitExited(root, c.id, timeoutSeconds * 1000))) {
    await killContainer(root, c, "SIGKILL");
    await waitExited(root, c.id, 10_000);
  }
  await recordContainerEvent(root, "stop", c);
}

/** `rm`: refuses a running container unless forced; `volumes` (-v) also removes its anonymous volumes. */
export async function removeContainer(
  root: string,
  c: ContainerView,
  force: boolean,
  volumes = false,
): Promise<void> {
  if (c.running) {
    if (!force) {
      throw new MiniboxError(
        `cannot remove container ${c.id.slice(0, 12)}: it is running`,
        "stop it first, or use rm -f",
      );
    }
    await killContainer(root, c, "SIGKILL");
    await waitExited(root, c.id, 10_000);
    // A detached container's monitor hands over to `container-exited` once
    // the init is gone: let that finish first, or it would write (its lock
    // file) into a store that `rm` has already reported clean.
    if (c.monitorPid) await waitGone(c.monitorPid, 10_000);
  }
  const actor = containerActor(root, c);
  await withLock(lockOf(root, c.id), async () => {
    await openCgroup(c.id, { parent: c.cgroupParent })
      ?.destroy()
      .catch(() => undefined);
    // As on disk now: the exit's record (waitExited above) has usually released it already.
    const now = await readFile(containerPaths(root, c.id).state, "utf8").catch(() => undefined);
    if (now) await releaseNetworkOf(JSON.parse(now) as ContainerState);
    if (existsSync(containerPaths(root, c.id).dir))
      await removeContainerDir(containerPaths(root, c.id), c.name);
  });
  await recordEvent(root, "container", "destroy", actor);
  if (volumes) await removeAnonymousVolumes(root, c.mounts);
}

/**
 * Clean up after watchers that died: a foreground minibox that was killed
 * (its container died with it), or a monitor that was. Their mounts went with
 * the containers' mount namespaces; what is left is the cgroup and the state.
 * Returns the views of every container as the sweep left it (those with an
 * image, as listViews), so that a command that lists them next (ps) does not
 * read each state and exit file a second time.
 */
export async function sweepContainers(root: string): Promise<ContainerView[]> {
  const out: ContainerView[] = [];
  for (const state of await listContainers(root)) {
    if (!state.imageId) {
      // Reserved by a run that died before it wrote anything else.
      if (state.status !== "exited" && !alive(state.miniboxPid))
        await removeContainerDir(containerPaths(root, state.id), state.name);
      continue;
    }
    const view = viewOf(root, state);
    if (state.status === "exited" || view.running) out.push(view);
    else if (state.status === "created" && alive(state.miniboxPid)) out.push(view);
    else {
      await finalizeExit(root, state.id, view.error);
      const after = viewById(root, state.id);
      if (after) out.push(after);
    }
  }
  await reconcileEndpoints(root, async () => liveContainers(root));
  return out;
}

/**
 * Containers that may hold an address: every one not exited (a run or
 * start under way is "created" with its minibox alive, and has its lease
 * before the executor starts). Asked per lease of this store, under the
 * network's lease lock, so only the containers that hold a lease have their
 * state read, not every container of the store.
 */
function liveContainers(root: string): { has(id: string): boolean } {
  return {
    has(id) {
      const state = readState(root, id);
      return state !== undefined && state.status !== "exited";
    },
  };
}

/**
 * launch.ts's releaseNetwork, imported when a container is finalised or
 * removed. Why: launch.ts brings the executor, the plan and child_process
 * (~8 ms of CPU), which `ps` and every other command that only sweeps never
 * need.
 */
async function releaseNetworkOf(state: ContainerState): Promise<void> {
  const { releaseNetwork } = await import("./launch.js");
  await releaseNetwork(state);
}
