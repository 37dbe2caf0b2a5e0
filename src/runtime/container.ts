/**
 * `run`, from the image to the exit status:
 *
 *   resolve the image (pull if missing) → the container's directory and
 *   /etc files → user, env, limits → the OCI spec (config.json) → cgroup →
 *   the executor's plan → run it → exit status, OOM, clean-up
 *
 * State is a directory per container, <root>/containers/<id>/, with the
 * spec (config.json) and state.json. A foreground run is watched by this
 * process; if it is killed, the executor and the container die with it
 * (PR_SET_PDEATHSIG), their mounts vanish with their mount namespace, and
 * the next minibox command removes the cgroup and records the container as
 * exited (sweepContainers).
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { MiniboxError } from "../errors.js";
import type { CredentialStore } from "../image/credentials.js";
import { findImage, readConfig } from "../image/images.js";
import type { Platform } from "../image/manifest.js";
import type { PullReporter } from "../image/pull.js";
import { formatReference, parseReference } from "../image/reference.js";
import type { EndpointOptions } from "../image/registry.js";
import type { ImageRecord, Store } from "../image/store.js";
import { withLock } from "../sys/lock.js";
import { type Cgroup, type CgroupLimits, createCgroup } from "./cgroups/index.js";
import { type Created, prepareMounts, resolveMounts, undoMounts } from "./container-mounts.js";
import { Execution, type ExecutorResult, errnoText } from "./executor.js";
import { kernelRelease, loadUserns, saveUserns, type UsernsState } from "./idmap.js";
import { sweepContainers } from "./lifecycle.js";
import { containerMounts, type MountRequest } from "./mount-spec.js";
import { claimName } from "./names.js";
import { buildPlan, type Plan } from "./plan.js";
import {
  type ContainerPaths,
  containerPaths,
  prepareContainerDir,
  readImageFile,
  shiftedCopy,
  writeEtcFiles,
} from "./rootfs.js";
import { generateSpec, type Spec } from "./spec.js";
import { type ContainerState, removeContainerDir, writeState } from "./state.js";
import { resolveUser } from "./user.js";
import { removeAnonymousVolumes } from "./volumes.js";

export interface RunFlags {
  name?: string;
  command: string[];
  entrypoint?: string;
  env: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  tty: boolean;
  interactive: boolean;
  readOnly: boolean;
  rm: boolean;
  /** -d: print the ID and return; the executor stays as the container's monitor. */
  detach: boolean;
  /** --log-opt max-size=…, max-file=… */
  logMaxSize?: number;
  logMaxFiles?: number;
  /** --restart (applied by the monitor's exit hook). */
  restart?: NonNullable<ContainerState["restartPolicy"]>;
  capAdd: string[];
  capDrop: string[];
  limits: CgroupLimits;
  cgroupParent?: string;
  userns: "host" | "private";
  network: "none" | "host" | "bridge";
  init: boolean;
  labels: Record<string, string>;
  pull: "missing" | "always" | "never";
  /** -v and --mount, parsed (the image's VOLUMEs are added to them). */
  mounts: MountRequest[];
  /** false: leave the image's VOLUMEs out (build RUN steps). */
  imageVolumes?: boolean;
}

export interface RunContext {
  store: Store;
  credentials: CredentialStore;
  endpoints: EndpointOptions;
  platform: Platform;
  reporter: PullReporter;
  trace?: Tracer;
}

/** --trace output: one line per step, with the time since minibox started. */
export type Tracer = (line: string, durationMs?: number, atMs?: number) => void;

/** No --trace: the executor is then not asked to report its steps either. */
const NO_TRACE: Tracer = () => {};

export async function runContainer(
  ctx: RunContext,
  imageName: string,
  flags: RunFlags,
): Promise<number> {
  try {
    return await runContainerSteps(ctx, imageName, flags);
  } catch (err) {
    // Docker's rule: 125 when the failure is minibox's, before the program ran.
    if (err instanceof MiniboxError && err.exitCode === 1) {
      throw new MiniboxError(err.message, err.hint, 125);
    }
    throw err;
  }
}

async function runContainerSteps(
  ctx: RunContext,
  imageName: string,
  flags: RunFlags,
): Promise<number> {
  const trace = ctx.trace ?? NO_TRACE;
  const { store } = ctx;
  await store.init();
  await sweepContainers(store.root);

  // 1. the image
  let t = performance.now();
  const image = await resolveImage(ctx, imageName, flags.pull);
  const config = await readConfig(store, image);
  const layers = image.layers.map((l) => store.layerDiffDir(l.chainId));
  trace(`image ${imageName} → ${image.id} (${layers.length} layers)`, performance.now() - t);

  // 2. identity, user namespace, user
  const id = randomBytes(32).toString("hex");
  const userns = flags.userns === "host" ? undefined : await loadUserns(store.root);
  if (userns) assertSearchable(store.root);
  const owner = userns ? { uid: userns.uid.hostID, gid: userns.gid.hostID } : { uid: 0, gid: 0 };
  const layerDirs = image.layers.map((l, i) => ({
    dir: layers[i] as string,
    opaqueDirs: l.opaqueDirs,
  }));
  const passwd = await readImageFile(layerDirs, "/etc/passwd");
  const group = await readImageFile(layerDirs, "/etc/group");
  const user = resolveUser(flags.user ?? config.config?.User ?? "", passwd, group);
  const hostname = flags.hostname ?? id.slice(0, 12);
  const paths = containerPaths(store.root, id);
  // Checked before anything is created: a duplicate mount point is bad input.
  const mounts = resolveMounts(
    store.root,
    containerMounts(
      flags.mounts,
      flags.imageVolumes === false ? undefined : config.config?.Volumes,
    ),
  );
  const idmapVolumes =
    userns !== undefined &&
    mounts.points.length > 0 &&
    (await idmappedMountsWork(store.root, userns, layers[0] as string));
  const name = await claimName(store.root, flags.name, id);

  let cgroup: Cgroup | undefined;
  const state: ContainerState = {
    id,
    name,
    imageId: image.id,
    imageRef: imageName,
    created: new Date().toISOString(),
    status: "created",
    miniboxPid: process.pid,
    autoRemove: flags.rm,
    cgroupParent: flags.cgroupParent,
    restartPolicy: flags.restart,
    restartCount: 0,
    logMaxSize: flags.logMaxSize,
    logMaxFiles: flags.logMaxFiles,
    mounts: mounts.points,
    binds: mounts.binds,
  };
  const created: Created = { volumes: [], dirs: [] };
  let launched = false;
  let badInput = false;
  try {
    t = performance.now();
    await prepareContainerDir(paths, layers.length, owner);
    await writeEtcFiles(paths, hostname, flags.network, owner);
    await writeState(paths, state);
    trace(`container ${id.slice(0, 12)} (${name}): ${paths.dir}`, performance.now() - t);
    if (mounts.points.length > 0) {
      // After state.json names the volumes: `volume rm` now sees them in use.
      t = performance.now();
      const shift =
        userns && !idmapVolumes ? { uid: userns.uid.hostID, gid: userns.gid.hostID } : undefined;
      try {
        await prepareMounts(store.root, mounts, { layers: layerDirs }, shift, created);
      } catch (err) {
        // A missing --mount source is bad input: no container is left for it (Docker).
        if (err instanceof MiniboxError) badInput = true;
        throw err;
      }
      trace(`volumes and bind mounts: ${mounts.points.length}`, performance.now() - t);
    }

    // 3. the spec: image config + flags, a pure function; kept for learners to read
    const spec = generateSpec({
      id,
      name,
      image: { id: image.id, ref: imageName, config },
      rootfs: paths.rootfs,
      command: flags.command,
      entrypoint: flags.entrypoint,
      env: flags.env,
      workdir: flags.workdir,
      user,
      hostname,
      tty: flags.tty,
      interactive: flags.interactive,
      readOnly: flags.readOnly,
      capAdd: flags.capAdd,
      capDrop: flags.capDrop,
      limits: flags.limits,
      idmap: userns
        ? { containerID: 0, hostID: userns.uid.hostID, size: userns.uid.size }
        : undefined,
      network: flags.network,
      init: flags.init,
      labels: { ...(config.config?.Labels ?? {}), ...flags.labels },
      hostFiles: { hostname: paths.hostname, hosts: paths.hosts, resolvConf: paths.resolvConf },
      rlimitHard: { nofile: nofileHardLimit() },
      volumes: mounts.points.map((m) => ({
        source: m.Source,
        destination: m.Destination,
        readOnly: !m.RW,
        idmap: idmapVolumes,
      })),
    });
    await writeFile(paths.config, `${JSON.stringify(spec, null, 2)}\n`);

    // 4.–6. layers, cgroup, plan: shared with `start`
    const prepared = await prepareLaunch(ctx, {
      image,
      spec,
      state,
      paths,
      userns,
      limits: flags.limits,
      init: flags.init,
      interactive: flags.interactive && !flags.detach,
      detach: flags.detach,
      trace,
    });
    cgroup = prepared.cgroup;
    const plan = prepared.plan;
    launched = true;
    if (flags.detach) return await startDetached(plan, spec, state, cgroup, paths, trace);
    const result = await execute(plan, spec, state, paths, trace);
    return await finish(result, spec, state, cgroup, paths, trace);
  } catch (err) {
    await cgroup?.destroy().catch(() => undefined);
    state.status = "exited";
    state.exitCode = 125;
    state.error = (err as Error).message;
    state.finishedAt = new Date().toISOString();
    if (flags.rm || badInput) await removeContainerDir(paths, name);
    else await writeState(paths, state).catch(() => undefined);
    // Failed before the executor ran (bad input): what this run created for
    // the container goes, nothing half-made stays. Once it ran, its volumes
    // are the container's, and --rm takes the anonymous ones (Docker).
    if (!launched) await undoMounts(store.root, created);
    else if (flags.rm) await removeAnonymousVolumes(store.root, state.mounts);
    throw err;
  }
}

interface LaunchInput {
  image: ImageRecord;
  spec: Spec;
  state: ContainerState;
  paths: ContainerPaths;
  userns: UsernsState | undefined;
  limits: CgroupLimits;
  init: boolean;
  interactive: boolean;
  detach: boolean;
  trace: Tracer;
}

/**
 * The layers as the container's root will see them, the cgroup with its
 * limits, and the executor's plan — for a new container (`run`) and for a
 * stopped one started again (`start`, restart policies).
 */
async function prepareLaunch(
  ctx: { store: Store },
  input: LaunchInput,
): Promise<{ cgroup: Cgroup; plan: Plan }> {
  const { store } = ctx;
  const { image, spec, state, paths, userns, trace } = input;
  const layers = image.layers.map((l) => store.layerDiffDir(l.chainId));
  const idmapped = userns
    ? await idmappedMountsWork(store.root, userns, layers[0] as string)
    : false;
  const planLayers = userns && !idmapped ? await shiftedLayers(ctx, image, userns, trace) : layers;
  const cgroup = await createCgroup(state.id, input.limits, {
    parent: state.cgroupParent,
    trace: (line) => trace(line),
  });
  const plan = buildPlan(spec, {
    containerDir: paths.dir,
    fileMounts: fileMounts(spec),
    layers: planLayers,
    idmappedLayers: idmapped,
    cgroupProcs: cgroup.procsFiles,
    waitForGo: false,
    init: input.init,
    interactive: input.interactive,
    // Output goes through the executor into the json-file log; with a
    // terminal (-t), what the executor relays is logged (one stream, as Docker).
    log: { file: paths.log, maxSize: state.logMaxSize, maxFiles: state.logMaxFiles },
    detach: input.detach
      ? {
          exitFile: paths.exit,
          // The monitor becomes this command when the container exits: minibox
          // itself records the exit, removes the cgroup and applies --rm.
          hook: [
            process.execPath,
            process.argv[1] as string,
            "--root",
            store.root,
            "container-exited",
            state.id,
          ],
        }
      : undefined,
  });
  return { cgroup, plan };
}

/** Bind mounts (other than the /etc files) whose source is a file: their mount point is a file too. */
function fileMounts(spec: Spec): string[] {
  return spec.mounts
    .filter((m) => m.type === "bind" && !m.source.startsWith(dirname(spec.root.path)))
    .filter((m) => statSync(m.source, { throwIfNoEntry: false })?.isFile())
    .map((m) => m.destination);
}

/** The cgroup limits a container was created with, read back from its spec. */
function limitsFromSpec(spec: Spec): CgroupLimits {
  const r = spec.linux.resources;
  return {
    memory: r.memory?.limit,
    memorySwap: r.memory?.swap,
    cpuQuota: r.cpu?.quota,
    cpuPeriod: r.cpu?.period,
    cpuShares: r.cpu?.shares,
    pidsLimit: r.pids?.limit,
  };
}

/**
 * `start`: run a stopped container again — same spec, same writable layer,
 * a new process under a new monitor (always detached, like `docker start`).
 */
export async function startContainer(
  store: Store,
  id: string,
  trace: Tracer = NO_TRACE,
): Promise<void> {
  const paths = containerPaths(store.root, id);
  const state = JSON.parse(await readFile(paths.state, "utf8")) as ContainerState;
  const spec = JSON.parse(await readFile(paths.config, "utf8")) as Spec;
  const image = (await store.readIndex()).images[state.imageId];
  if (!image) {
    throw new MiniboxError(
      `the image of container ${id.slice(0, 12)} was removed`,
      "remove the container",
    );
  }
  const userns = spec.linux.uidMappings ? await loadUserns(store.root) : undefined;
  await rm(paths.exit, { force: true });
  // Started by a restart policy: keep counting; started by the user: begin again.
  const byPolicy =
    state.status === "exited" && !state.manuallyStopped && (state.restartCount ?? 0) > 0;
  Object.assign(state, {
    status: "created",
    miniboxPid: process.pid,
    exitCode: undefined,
    error: undefined,
    oomKilled: false,
    manuallyStopped: false,
    restartCount: byPolicy ? state.restartCount : 0,
  });
  const { cgroup, plan } = await prepareLaunch(
    { store },
    {
      image,
      spec,
      state,
      paths,
      userns,
      limits: limitsFromSpec(spec),
      init: spec.annotations["minibox.init"] === "true",
      interactive: false,
      detach: true,
      trace,
    },
  );
  await startDetached(plan, spec, state, cgroup, paths, trace, false);
}

async function resolveImage(
  ctx: RunContext,
  name: string,
  policy: RunFlags["pull"],
): Promise<ImageRecord> {
  if (policy !== "always") {
    const found = await findImage(ctx.store, name);
    if (found) return found.record;
    if (policy === "never") {
      throw new MiniboxError(`no such image: ${name}`, "pull it first, or drop --pull=never");
    }
    process.stderr.write(`Unable to find image '${name}' locally\n`);
  }
  const ref = parseReference(name);
  const { pullImage } = await import("../image/pull.js");
  const result = await pullImage(ctx.store, ref, {
    ...ctx.endpoints,
    platform: ctx.platform,
    credentials: ctx.credentials,
    reporter: ctx.reporter,
  });
  ctx.reporter.stop?.();
  if (ref.digest === undefined && ref.tag !== undefined) {
    ctx.reporter.status(`Status: Downloaded newer image for ${formatReference(ref)}`);
  }
  return result.record;
}

/**
 * Under a user namespace the container's root is an ordinary host uid, and
 * its init reaches the rootfs through the state directory's ancestors before
 * pivot_root: each must be enterable by others (o+x), as /var/lib is.
 */
function assertSearchable(root: string): void {
  for (let dir = resolve(root); ; dir = dirname(dir)) {
    const mode = statSync(dir).mode;
    if (!(mode & 0o001)) {
      throw new MiniboxError(
        `${dir} is not searchable by other users (mode ${(mode & 0o777).toString(8)}), so a container's root cannot reach its files`,
        `run 'chmod o+x ${dir}', choose another --root, or use --userns=host`,
      );
    }
    if (dir === "/") return;
  }
}

function nofileHardLimit(): number {
  // /proc/self/limits is the only way Node can read rlimits.
  try {
    const text = readFileSync("/proc/self/limits", "utf8");
    const line = text.split("\n").find((l) => l.startsWith("Max open files"));
    const hard = line?.split(/\s{2,}/)[2];
    return hard === "unlimited" || !hard ? 1048576 : Number(hard);
  } catch {
    return 1024;
  }
}

/**
 * Idmapped mounts need kernel ≥ 5.12 and filesystem support. Detect, don't
 * assume: try once per kernel (a tiny plan that idmaps one layer), remember
 * the answer in userns.json.
 */
async function idmappedMountsWork(
  root: string,
  userns: UsernsState,
  layer: string,
): Promise<boolean> {
  if (process.env.MINIBOX_NO_IDMAP === "1") return false;
  const kernel = kernelRelease();
  if (userns.idmappedMounts?.kernel === kernel) return userns.idmappedMounts.supported;
  const probe: Plan = {
    setup: [
      { op: "mountns", args: [], describe: "private mount namespace" },
      {
        op: "idmap-userns",
        args: [
          `0 ${userns.uid.hostID} ${userns.uid.size}\n`,
          `0 ${userns.gid.hostID} ${userns.gid.size}\n`,
        ],
        describe: "idmap user namespace",
      },
      { op: "idmap-mount", args: [layer, layer], describe: "idmapped mount probe" },
      { op: "clone", args: ["0"], describe: "clone" },
    ],
    parent: [],
    child: [{ op: "exec", args: ["/bin/true"], describe: "exit" }],
  };
  const result = await new Execution(probe, { trace: false, stdio: "ignore" }).done;
  const supported = result.exitCode === 0;
  await saveUserns(root, { ...userns, idmappedMounts: { kernel, supported } });
  return supported;
}

/** Layers copied with owners shifted into the container's range (the no-idmap fallback). */
async function shiftedLayers(
  ctx: { store: Store },
  image: ImageRecord,
  userns: UsernsState,
  trace: Tracer,
) {
  const out: string[] = [];
  for (const layer of image.layers) {
    const hex = layer.chainId.slice(7);
    const dir = join(ctx.store.root, "layers-shifted", String(userns.uid.hostID), hex);
    const diff = join(dir, "diff");
    await withLock(ctx.store.lockPath(`shift-${hex}`), async () => {
      if (existsSync(diff)) return;
      const t = performance.now();
      const staging = ctx.store.tmpPath("shift");
      await mkdir(staging, { recursive: true });
      await shiftedCopy(ctx.store.layerDiffDir(layer.chainId), join(staging, "diff"), {
        uid: userns.uid.hostID,
        gid: userns.gid.hostID,
      });
      await mkdir(join(dir, ".."), { recursive: true });
      await rename(staging, dir);
      trace(
        `copied layer ${hex.slice(0, 12)} with owners shifted by ${userns.uid.hostID}`,
        performance.now() - t,
      );
    });
    out.push(diff);
  }
  return out;
}

/** -d: wait until the program runs, record the monitor, print the ID. */
async function startDetached(
  plan: Plan,
  spec: Spec,
  state: ContainerState,
  cgroup: Cgroup,
  paths: ContainerPaths,
  trace: Tracer,
  printId = true,
): Promise<number> {
  const spawnedAt = performance.now();
  const execution = new Execution(plan, {
    trace: trace !== NO_TRACE,
    detach: true,
    planFile: join(paths.dir, "plan.txt"),
    events: {
      onTrace: (step, start, duration, extra) =>
        trace(`${step.describe}${extra ? ` (${extra})` : ""}`, duration, spawnedAt + start),
    },
  });
  const result = await execution.startedOrDone();
  if (!result.started) return finish(result, spec, state, cgroup, paths, trace);
  state.pid = result.pid;
  state.monitorPid = execution.child.pid;
  state.status = "running";
  state.startedAt = new Date().toISOString();
  state.logPath = paths.log;
  await writeState(paths, state);
  if (printId) process.stdout.write(`${state.id}\n`);
  return 0;
}

async function execute(
  plan: Plan,
  spec: Spec,
  state: ContainerState,
  paths: ContainerPaths,
  trace: Tracer,
): Promise<ExecutorResult> {
  const spawnedAt = performance.now();
  const execution = new Execution(plan, {
    trace: trace !== NO_TRACE,
    planFile: join(paths.dir, "plan.txt"),
    events: {
      onTrace: (step, start, duration, extra) =>
        trace(`${step.describe}${extra ? ` (${extra})` : ""}`, duration, spawnedAt + start),
      onPid: async (pid) => {
        state.pid = pid;
        state.status = "running";
        state.startedAt = new Date().toISOString();
        await writeState(paths, state);
      },
    },
  });
  // Signals sent to minibox go to the container. Ctrl-C on a terminal
  // already reaches every process of the foreground group, the executor too.
  const forwarded: NodeJS.Signals[] = ["SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2"];
  if (!process.stdin.isTTY) forwarded.push("SIGINT", "SIGQUIT");
  const handlers = forwarded.map((sig) => {
    const handler = () => execution.signal(sig);
    process.on(sig, handler);
    return [sig, handler] as const;
  });
  const ignoreTerminalSignals = () => {};
  if (process.stdin.isTTY) process.on("SIGINT", ignoreTerminalSignals);
  try {
    return await execution.done;
  } finally {
    for (const [sig, handler] of handlers) process.off(sig, handler);
    process.off("SIGINT", ignoreTerminalSignals);
    void spec;
  }
}

async function finish(
  result: ExecutorResult,
  spec: Spec,
  state: ContainerState,
  cgroup: Cgroup,
  paths: ContainerPaths,
  trace: Tracer,
): Promise<number> {
  const oom = cgroup.oomKilled();
  await cgroup.destroy();
  state.status = "exited";
  state.finishedAt = new Date().toISOString();
  state.oomKilled = oom;
  let code: number;
  let message: string | undefined;
  if (result.failure && !result.started) {
    ({ code, message } = explainFailure(result, spec));
  } else {
    code = result.exitCode ?? (result.signal !== undefined ? 128 + result.signal : 125);
  }
  if (oom) {
    code = 137;
    message = `container ${state.name} was OOM killed: it used all of its ${humanLimit(spec)} memory limit`;
  }
  state.exitCode = code;
  if (message) state.error = message;
  trace(`exit status ${code}${oom ? " (OOM killed)" : ""}`);
  if (state.autoRemove) {
    await removeContainerDir(paths, state.name);
    // --rm takes the container's anonymous volumes with it (Docker).
    await removeAnonymousVolumes(dirname(dirname(paths.dir)), state.mounts);
  } else await writeState(paths, state);
  if (message) throw new MiniboxError(message, undefined, code);
  return code;
}

function humanLimit(spec: Spec): string {
  const limit = spec.linux.resources.memory?.limit;
  return limit ? `${Math.round(limit / 1024 / 1024)} MiB` : "";
}

/** Docker's exit statuses: 127 not found, 126 cannot execute, 125 our own failure. */
function explainFailure(result: ExecutorResult, spec: Spec): { code: number; message: string } {
  const f = result.failure;
  if (!f) return { code: 125, message: "the container did not start" };
  const program = spec.process.args[0];
  if (f.call === "execve") {
    if (f.errno === 2) {
      return {
        code: 127,
        message: program?.includes("/")
          ? `exec: "${program}": no such file or directory`
          : `exec: "${program}": executable file not found in $PATH`,
      };
    }
    return { code: 126, message: `exec: "${program}": ${errnoText(f.errno).toLowerCase()}` };
  }
  if (f.call === "executor") return { code: 125, message: `the executor died (${f.detail})` };
  const what = f.step?.describe ?? f.call;
  if (f.call === "mount_setattr" && f.step?.op === "idmap-mount") {
    // e.g. a bind mount from NFS or FUSE, which cannot be idmapped.
    return {
      code: 125,
      message: `${what}: the filesystem of ${f.detail ?? f.step.args[0]} does not support idmapped mounts (${errnoText(f.errno)}); use --userns=host for this container`,
    };
  }
  return { code: 125, message: `${what}: ${f.call}: ${errnoText(f.errno)}` };
}
