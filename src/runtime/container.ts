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
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { MiniboxError } from "../errors.js";
import type { CredentialStore } from "../image/credentials.js";
import { findImage, readConfig } from "../image/images.js";
import type { Platform } from "../image/manifest.js";
import type { PullReporter } from "../image/pull.js";
import { formatReference, parseReference } from "../image/reference.js";
import type { EndpointOptions } from "../image/registry.js";
import type { ImageRecord, Store } from "../image/store.js";
import { withLock } from "../sys/lock.js";
import { type Cgroup, type CgroupLimits, createCgroup, openCgroup } from "./cgroups/index.js";
import { Execution, type ExecutorResult, errnoText } from "./executor.js";
import { kernelRelease, loadUserns, saveUserns, type UsernsState } from "./idmap.js";
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
import { resolveUser } from "./user.js";

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
  capAdd: string[];
  capDrop: string[];
  limits: CgroupLimits;
  cgroupParent?: string;
  userns: "host" | "private";
  network: "none" | "host" | "bridge";
  init: boolean;
  labels: Record<string, string>;
  pull: "missing" | "always" | "never";
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

export interface ContainerState {
  id: string;
  name: string;
  imageId: string;
  imageRef: string;
  created: string;
  status: "created" | "running" | "exited";
  /** The minibox process watching this container (foreground run). */
  miniboxPid: number;
  pid?: number;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  oomKilled?: boolean;
  error?: string;
  autoRemove: boolean;
  cgroupParent?: string;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

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
  const trace = ctx.trace ?? (() => {});
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
  };
  try {
    t = performance.now();
    await prepareContainerDir(paths, layers.length, owner);
    await writeEtcFiles(paths, hostname, flags.network, owner);
    await writeState(paths, state);
    trace(`container ${id.slice(0, 12)} (${name}): ${paths.dir}`, performance.now() - t);

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
    });
    await writeFile(paths.config, `${JSON.stringify(spec, null, 2)}\n`);

    // 4. the layers as the container's root will see them
    const idmapped = userns
      ? await idmappedMountsWork(store.root, userns, layers[0] as string)
      : false;
    const planLayers =
      userns && !idmapped ? await shiftedLayers(ctx, image, userns, trace) : layers;

    // 5. the cgroup, with its limits
    cgroup = await createCgroup(id, flags.limits, {
      parent: flags.cgroupParent,
      trace: (line) => trace(line),
    });

    // 6. the plan, executed
    const plan = buildPlan(spec, {
      containerDir: paths.dir,
      layers: planLayers,
      idmappedLayers: idmapped,
      cgroupProcs: cgroup.procsFiles,
      waitForGo: false,
      init: flags.init,
      interactive: flags.interactive,
    });
    const result = await execute(plan, spec, state, paths, trace);
    return await finish(result, spec, state, cgroup, paths, trace);
  } catch (err) {
    await cgroup?.destroy().catch(() => undefined);
    state.status = "exited";
    state.exitCode = 125;
    state.error = (err as Error).message;
    state.finishedAt = new Date().toISOString();
    if (flags.rm) await removeContainerDir(paths, name);
    else await writeState(paths, state).catch(() => undefined);
    throw err;
  }
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
 * Docker's rule: names are unique; without --name one is made up.
 *
 * A name is claimed by creating <root>/names/<name> with O_EXCL: the
 * kernel lets exactly one of two racing commands create it, so no lock is
 * needed. The file holds the container's ID; removing the container frees it.
 */
async function claimName(root: string, wanted: string | undefined, id: string): Promise<string> {
  if (wanted !== undefined && !NAME_RE.test(wanted)) {
    throw new MiniboxError(
      `invalid container name "${wanted}"`,
      "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
    );
  }
  await mkdir(join(root, "names"), { recursive: true, mode: 0o700 });
  for (let attempt = 0; ; attempt++) {
    const name = wanted ?? generatedName(attempt > 10);
    if (await tryClaim(root, name, id)) {
      await reserve(root, id, name);
      return name;
    }
    if (wanted !== undefined) {
      const other = (await readFile(namePath(root, name), "utf8").catch(() => "")).trim();
      throw new MiniboxError(
        `the container name "/${wanted}" is already in use by container "${other}"`,
        "remove or rename that container, or choose another name",
      );
    }
  }
}

function namePath(root: string, name: string): string {
  return join(root, "names", name);
}

async function tryClaim(root: string, name: string, id: string): Promise<boolean> {
  try {
    await writeFile(namePath(root, name), `${id}\n`, { flag: "wx" });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    // A name left by a container that no longer exists is free again.
    const owner = (await readFile(namePath(root, name), "utf8").catch(() => "")).trim();
    if (owner && !existsSync(containerPaths(root, owner).dir)) {
      await rm(namePath(root, name), { force: true });
      return tryClaim(root, name, id);
    }
    return false;
  }
}

async function reserve(root: string, id: string, name: string): Promise<void> {
  const paths = containerPaths(root, id);
  await mkdir(paths.dir, { recursive: true, mode: 0o711 });
  await writeFile(
    paths.state,
    JSON.stringify({ id, name, status: "created", miniboxPid: process.pid }),
  );
}

const ADJECTIVES = [
  "brave",
  "calm",
  "eager",
  "gentle",
  "happy",
  "jolly",
  "keen",
  "lucid",
  "merry",
  "quirky",
  "sharp",
  "witty",
];
const NAMES = [
  "curie",
  "darwin",
  "hopper",
  "lovelace",
  "noether",
  "ritchie",
  "thompson",
  "torvalds",
  "turing",
  "wozniak",
];

function generatedName(withNumber: boolean): string {
  const pick = <T>(a: T[]) => a[Math.floor(Math.random() * a.length)] as T;
  return `${pick(ADJECTIVES)}_${pick(NAMES)}${withNumber ? Math.floor(Math.random() * 10) : ""}`;
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
  ctx: RunContext,
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

async function execute(
  plan: Plan,
  spec: Spec,
  state: ContainerState,
  paths: ContainerPaths,
  trace: Tracer,
): Promise<ExecutorResult> {
  const spawnedAt = performance.now();
  const execution = new Execution(plan, {
    trace: Boolean(trace),
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
  if (state.autoRemove) await removeContainerDir(paths, state.name);
  else await writeState(paths, state);
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
  return { code: 125, message: `${what}: ${f.call}: ${errnoText(f.errno)}` };
}

// ---- container state --------------------------------------------------------------

export async function writeState(paths: ContainerPaths, state: ContainerState): Promise<void> {
  const tmp = `${paths.state}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`);
  await rename(tmp, paths.state);
}

export async function listContainers(root: string): Promise<ContainerState[]> {
  const dir = join(root, "containers");
  let ids: string[];
  try {
    ids = await readdir(dir);
  } catch {
    return [];
  }
  const out: ContainerState[] = [];
  for (const id of ids) {
    try {
      out.push(JSON.parse(await readFile(join(dir, id, "state.json"), "utf8")));
    } catch {
      // being created or removed right now
    }
  }
  return out;
}

/** Remove a container's directory, then free its name. */
async function removeContainerDir(paths: ContainerPaths, name?: string): Promise<void> {
  await rm(paths.dir, { recursive: true, force: true });
  if (name) {
    const file = join(dirname(dirname(paths.dir)), "names", name);
    const owner = (await readFile(file, "utf8").catch(() => "")).trim();
    if (owner === basename(paths.dir)) await rm(file, { force: true });
  }
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Clean up after minibox processes that were killed: their containers died
 * with them (PDEATHSIG), their mounts with the containers; what is left is
 * the cgroup and the state. Record them as exited (or remove them, --rm).
 */
export async function sweepContainers(root: string): Promise<void> {
  for (const state of await listContainers(root)) {
    if (state.status === "exited" || alive(state.miniboxPid)) continue;
    const paths = containerPaths(root, state.id);
    await openCgroup(state.id, { parent: state.cgroupParent })
      ?.destroy()
      .catch(() => undefined);
    if (state.autoRemove || !state.imageId) {
      await removeContainerDir(paths, state.name);
      continue;
    }
    state.status = "exited";
    state.exitCode = state.exitCode ?? 137;
    state.error = "minibox was killed while the container ran";
    state.finishedAt = state.finishedAt ?? new Date().toISOString();
    await writeState(paths, state);
  }
}
