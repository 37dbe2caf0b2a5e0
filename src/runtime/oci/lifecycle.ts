/**
 * minibox-runc's container lifecycle (the OCI runtime spec's runtime.md):
 * create → created (the init waits before the user's program) → start →
 * running → the program exits → stopped → delete. The init's parent is
 * not minibox: the executor exits once the init waits, and the init is
 * adopted by the caller's subreaper (containerd's shim, conmon), which
 * reaps it and reads its exit status — as with runc.
 */
import {
  closeSync,
  constants,
  mkdirSync,
  openSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { MiniboxError } from "../../errors.js";
import { removeIfEmpty } from "../cgroups/common.js";
import { findFreezer, setFrozen } from "../cgroups/freezer.js";
import type { ExecutorResult } from "../executor.js";
import { explainFailure } from "../failure.js";
import { type BundleLaunch, launchBundle, loadBundle } from "./bundle-launch.js";
import type { Hooks } from "./bundle-spec.js";
import { cgroupPids, recordCgroup } from "./container-control.js";
import { runHooks, runHooksWarning } from "./hooks.js";
import { writePidFile } from "./pid-file.js";
import {
  containerDir,
  execFifo,
  initAlive,
  type OciState,
  ociState,
  procStat,
  type RuntimeRecord,
  readRecord,
  specFile,
  statusOf,
  writeFastFiles,
  writeRecord,
} from "./runtime-state.js";
import { signalNumber } from "./signal-names.js";

/** The record, and the files native/minibox-runc-fast answers from (written first: state.json last says "complete"). */
function saveRecord(dir: string, record: RuntimeRecord): void {
  writeFastFiles(dir, record);
  writeRecord(dir, record);
}

const warn = (line: string) => process.stderr.write(`minibox-runc: ${line}\n`);

export interface CreateOptions {
  root: string;
  id: string;
  bundle?: string;
  pidFile?: string;
  consoleSocket?: string;
  /** --preserve-fds: our descriptors 3..3+N-1 (after LISTEN_FDS's) go to the program. */
  preserveFds?: number;
}

/**
 * systemd socket activation, as runc honours it: LISTEN_FDS descriptors
 * (from 3) meant for us (LISTEN_PID is our PID: the launcher execs node)
 * go to the container, which is told LISTEN_FDS=N and LISTEN_PID=1.
 */
function listenFds(): number {
  const n = Number(process.env.LISTEN_FDS ?? 0);
  return Number.isInteger(n) && n > 0 && process.env.LISTEN_PID === String(process.pid) ? n : 0;
}

/** The directory for a new container: runc's error when the ID is taken. */
function newContainerDir(root: string, id: string): string {
  const dir = containerDir(root, id);
  // 0711, not runc's 0700: the bundle's rootfs is bound under <root>/<id>,
  // and under a user namespace the container's root (an unprivileged host
  // uid) must be able to pass through both to mount its /proc there. The
  // files in them stay 0600.
  mkdirSync(root, { recursive: true, mode: 0o711 });
  try {
    mkdirSync(dir, { mode: 0o711 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") {
      throw new MiniboxError(`container with id exists: ${id}`);
    }
    throw err;
  }
  return dir;
}

function recordOf(launch: BundleLaunch, pid: number): RuntimeRecord {
  const { loaded } = launch;
  return {
    id: launch.id,
    pid,
    startTime: procStat(pid)?.startTime ?? "",
    bundle: loaded.bundle,
    rootfs: loaded.rootfs,
    created: new Date().toISOString(),
    annotations: loaded.spec.annotations,
    cgroupDirs: launch.cgroup.dirs,
    cgroupAbove: launch.cgroup.createdAbove(),
    cgroup: launch.cgroupPlace,
    ociVersion: loaded.spec.ociVersion,
    hooks: pickHooks(loaded.hooks, ["startContainer", "poststart", "poststop"]),
  };
}

function pickHooks(hooks: Hooks, kinds: (keyof Hooks)[]): Hooks {
  return Object.fromEntries(kinds.filter((k) => hooks[k]?.length).map((k) => [k, hooks[k]]));
}

/**
 * The state the create hooks see while the init is held: "created" (the
 * environment is made, the program not yet run), as crun passes it and the
 * runtime-tools conformance suite expects; runc 1.1 passes "creating".
 */
function heldState(launch: BundleLaunch, pid: number): OciState {
  const { loaded } = launch;
  return {
    ociVersion: loaded.spec.ociVersion,
    id: launch.id,
    pid,
    status: "created",
    bundle: loaded.bundle,
    rootfs: loaded.rootfs,
    created: new Date().toISOString(),
    owner: "",
    ...(Object.keys(loaded.spec.annotations).length
      ? { annotations: loaded.spec.annotations }
      : {}),
  };
}

function failureMessage(launch: BundleLaunch, result: ExecutorResult): string {
  if (launch.heldError) return launch.heldError.message;
  return explainFailure(result.failure, launch.loaded.spec.process.args[0], 125).message;
}

/**
 * Launch with createRuntime/prestart/createContainer hooks run while the
 * executor holds the init (its namespaces exist, the program has not run):
 * in the runtime's namespaces, where runc runs the first two (minibox runs
 * createContainer there too — see docs/oci-runtime.md).
 */
async function launch(
  opts: CreateOptions,
  dir: string,
  create: boolean,
  onPid?: (l: BundleLaunch, pid: number) => Promise<void>,
) {
  const loaded = loadBundle(opts.bundle);
  const listen = listenFds();
  if (listen) loaded.spec.process.env.push(`LISTEN_FDS=${listen}`, "LISTEN_PID=1");
  const early = [
    ...(loaded.hooks.prestart ?? []).map((h) => ["prestart", h] as const),
    ...(loaded.hooks.createRuntime ?? []).map((h) => ["createRuntime", h] as const),
    ...(loaded.hooks.createContainer ?? []).map((h) => ["createContainer", h] as const),
  ];
  let self: BundleLaunch | undefined;
  const l: BundleLaunch = await launchBundle({
    id: opts.id,
    dir,
    root: opts.root,
    loaded,
    create,
    consoleSocket: opts.consoleSocket,
    passFds: listen + (opts.preserveFds ?? 0),
    whileHeld: early.length
      ? async (pid) => {
          for (const [kind, hook] of early) await runHooks(kind, [hook], heldState(self ?? l, pid));
        }
      : undefined,
    events: { onPid: async (pid) => onPid?.(self ?? l, pid) },
  });
  self = l;
  return l;
}

/** `create`: the container made, its init waiting for `start`; the pid file written. */
export async function createContainer(opts: CreateOptions): Promise<void> {
  const dir = newContainerDir(opts.root, opts.id);
  let l: BundleLaunch | undefined;
  try {
    l = await launch(opts, dir, true);
    const result = await l.execution.done;
    if (!result.created || result.pid === undefined)
      throw new MiniboxError(failureMessage(l, result));
    writeFileSync(specFile(dir), JSON.stringify(l.loaded.spec));
    saveRecord(dir, recordOf(l, result.pid));
    if (opts.pidFile) writePidFile(opts.pidFile, result.pid);
  } catch (err) {
    await l?.cgroup.destroy().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** `start`: release the waiting init (write to its FIFO), then the poststart hooks. */
export async function startContainer(root: string, id: string): Promise<void> {
  const record = readRecord(root, id);
  const status = statusOf(root, record);
  if (status === "stopped") throw new MiniboxError("cannot start a container that has stopped");
  if (status !== "created") throw new MiniboxError("cannot start an already running container");
  await runHooks("startContainer", record.hooks.startContainer, ociState(root, record));
  const fifo = execFifo(containerDir(root, id));
  let fd: number;
  try {
    // Non-blocking: the init holds the FIFO open, so the open succeeds at
    // once; with no reader left (the init died) it fails with ENXIO.
    fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch {
    throw new MiniboxError("cannot start a container that has stopped");
  }
  try {
    writeSync(fd, "0");
  } finally {
    closeSync(fd);
  }
  unlinkSync(fifo);
  await runHooksWarning("poststart", record.hooks.poststart, ociState(root, record), warn);
}

/** `run`: create and start in one, in the foreground: the container's exit status is ours. */
export async function runContainer(opts: CreateOptions & { detach?: boolean }): Promise<number> {
  if (opts.detach) {
    await createContainer(opts);
    await startContainer(opts.root, opts.id);
    return 0;
  }
  const dir = newContainerDir(opts.root, opts.id);
  let l: BundleLaunch | undefined;
  try {
    l = await launch(opts, dir, false, async (self, pid) => {
      writeFileSync(specFile(dir), JSON.stringify(self.loaded.spec));
      saveRecord(dir, recordOf(self, pid));
      if (opts.pidFile) writePidFile(opts.pidFile, pid);
    });
    const result = await l.execution.done;
    if (!result.started) throw new MiniboxError(failureMessage(l, result));
    const code = result.exitCode ?? (result.signal !== undefined ? 128 + result.signal : 255);
    await destroy(opts.root, readRecordOrNull(opts.root, opts.id));
    return code;
  } finally {
    await l?.cgroup.destroy().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

function readRecordOrNull(root: string, id: string): RuntimeRecord | undefined {
  try {
    return readRecord(root, id);
  } catch {
    return undefined;
  }
}

/** `kill [--all] ID [SIGNAL]` (default SIGTERM). */
export function killContainer(
  root: string,
  id: string,
  signal: string | undefined,
  all: boolean,
): void {
  const record = readRecord(root, id);
  const sig = signalNumber(signal ?? "SIGTERM");
  if (statusOf(root, record) === "stopped") throw new MiniboxError("container not running");
  const pids = all ? cgroupPids(record) : [record.pid];
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
    }
  }
}

/** Kill what is left, remove the cgroup (and what was made above it) and the state; then poststop. */
async function destroy(root: string, record: RuntimeRecord | undefined): Promise<void> {
  if (!record) return;
  if (initAlive(record)) {
    try {
      process.kill(record.pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
  const cg = recordCgroup(record);
  // A frozen task takes no SIGKILL until thawed (v1): thaw a paused container first.
  const freezer = findFreezer(record.cgroupDirs);
  if (freezer) await setFrozen(freezer, false).catch(() => undefined);
  await cg?.destroy();
  for (const dir of record.cgroupAbove) {
    try {
      removeIfEmpty(dir, () => undefined);
    } catch {
      // another container still uses it
    }
  }
  const state = { ...ociState(root, record), status: "stopped" as const, pid: 0 };
  rmSync(containerDir(root, record.id), { recursive: true, force: true });
  await runHooksWarning("poststop", record.hooks.poststop, state, warn);
}

/** `delete [--force] ID`. */
export async function deleteContainer(root: string, id: string, force: boolean): Promise<void> {
  let record: RuntimeRecord;
  try {
    record = readRecord(root, id);
  } catch (err) {
    // An aborted create can leave a directory without a state: remove it (runc does too).
    rmSync(containerDir(root, id), { recursive: true, force: true });
    if (force) return;
    throw err;
  }
  const status = statusOf(root, record);
  if (status !== "stopped" && status !== "created" && !force) {
    throw new MiniboxError(`cannot delete container ${id} that is not stopped: ${status}`);
  }
  await destroy(root, record);
}
