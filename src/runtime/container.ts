/**
 * `run`, from the image to the exit status:
 *
 *   resolve the image (pull if missing) → the container's identity, user
 *   and mounts → its directory and /etc files → the OCI spec (config.json)
 *   → layers, cgroup and the executor's plan (launch.ts) → run it → exit
 *   status, OOM, clean-up
 *
 * State is a directory per container, <root>/containers/<id>/, with the
 * spec (config.json) and state.json. A foreground run is watched by this
 * process; if it is killed, the executor and the container die with it
 * (PR_SET_PDEATHSIG), their mounts vanish with their mount namespace, and
 * the next minibox command removes the cgroup and records the container as
 * exited (sweepContainers).
 */

import { randomBytes } from "node:crypto";
import { statSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { release } from "node:os";
import { dirname, resolve } from "node:path";
import { MiniboxError } from "../errors.js";
import { containerActor, recordContainerEvent } from "../events/container-events.js";
import { recordEvent } from "../events/journal.js";
import type { CredentialStore } from "../image/credentials.js";
import { findImage, readConfig } from "../image/images.js";
import type { Platform } from "../image/manifest.js";
import type { PullReporter } from "../image/pull.js";
import { formatReference, parseReference } from "../image/reference.js";
import type { EndpointOptions } from "../image/registry.js";
import type { ImageRecord, Store } from "../image/store.js";
import { type ContainerPaths, containerPaths, NETWORK_ROOT, rootLayout } from "../layout.js";
import type { CgroupLimits } from "./cgroups/index.js";
import {
  type Created,
  hostMounts,
  prepareMounts,
  type ResolvedMounts,
  resolveMounts,
  undoMounts,
} from "./container-mounts.js";
import {
  checkContainerPath,
  type DeviceMapping,
  gatherDevices,
  type SpecDevice,
} from "./devices.js";
import { type HealthConfig, mergeHealthcheck } from "./health/config.js";
import { loadUserns, type UsernsState } from "./idmap.js";
import { idmappedMountsWork } from "./idmap-probe.js";
import {
  type Launched,
  prepareLaunch,
  releaseNetwork,
  runInForeground,
  startDetached,
} from "./launch.js";
import { sweepContainers } from "./lifecycle.js";
import { callerHardLimits, limitsFromSpec, nofileHardLimit } from "./limits.js";
import { containerMounts, type MountRequest } from "./mount-spec.js";
import { claimName } from "./names.js";
import { type DnsFlags, NO_DNS_FLAGS } from "./network/dns-config.js";
import type { EndpointRequest } from "./network/endpoint.js";
import { DEFAULT_NETWORK, getNetwork } from "./network/networks.js";
import {
  checkPublishable,
  type PortRequest,
  portKey,
  publishAllRequests,
} from "./network/ports.js";
import { callerCapabilities, hostDevices } from "./privileged.js";
import { prepareContainerDir, readImageFile, writeEtcFiles } from "./rootfs.js";
import { resolvedSeccomp } from "./seccomp/cache.js";
import type { SecurityOptions } from "./security-options.js";
import { generateSpec, type RunSettings, type Spec, specCapabilities } from "./spec.js";
import { specSummary } from "./spec-summary.js";
import { type ContainerState, removeContainerDir, writeState } from "./state.js";
import { NO_TRACE, type Tracer } from "./trace.js";
import { checkUlimitsInUserns, type Ulimit } from "./ulimits.js";
import { type ResolvedUser, resolveGroupAdd, resolveUser } from "./user.js";
import { removeAnonymousVolumes } from "./volumes.js";
import { type VolumesFromFlag, volumesFrom } from "./volumes-from.js";

export type { Tracer } from "./trace.js";

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
  /** --security-opt, parsed (absent: minibox's defaults: its seccomp profile, no_new_privs on). */
  security?: SecurityOptions;
  /** --privileged */
  privileged?: boolean;
  limits: CgroupLimits;
  cgroupParent?: string;
  userns: "host" | "private";
  network: "none" | "host" | "bridge";
  /** With network "bridge": the bridge networks, in order (eth0 first); absent: the default bridge. */
  networks?: EndpointRequest[];
  /** --dns, --dns-search, --dns-option (absent: none given). */
  dns?: DnsFlags;
  /** --add-host, as "NAME:IP" (IP may be host-gateway). */
  extraHosts?: string[];
  /** -p, parsed (ports.ts parsePortSpecs). */
  publish?: PortRequest[];
  /** -P: every port the image exposes, to a free host port. */
  publishAll?: boolean;
  /** --expose: port keys ("8080/tcp") added to the image's ExposedPorts. */
  expose?: string[];
  init: boolean;
  labels: Record<string, string>;
  pull: "missing" | "always" | "never";
  /** -v, --mount and --tmpfs, parsed (the image's VOLUMEs are added to them). */
  mounts: MountRequest[];
  /** --volumes-from, parsed: the containers' mounts are added after the flags'. */
  volumesFrom?: VolumesFromFlag[];
  /** --shm-size in bytes (absent: Docker's 64 MiB). */
  shmSize?: number;
  /** false: leave the image's VOLUMEs out (build RUN steps). */
  imageVolumes?: boolean;
  /** --ulimit, parsed (ulimits.ts), one per name. */
  ulimits?: Ulimit[];
  /** --group-add: group names or gids, resolved in the image's /etc/group. */
  groupAdd?: string[];
  /** --sysctl, parsed and checked against the namespaces (sysctls.ts). */
  sysctls?: Record<string, string>;
  /** --device, parsed (devices.ts parseDeviceFlag). */
  devices?: DeviceMapping[];
  /** --health-* / --no-healthcheck (health/config.ts healthFromFlags); absent: the image's. */
  healthcheck?: HealthConfig;
}

export interface RunContext {
  store: Store;
  credentials: CredentialStore;
  endpoints: EndpointOptions;
  platform: Platform;
  reporter: PullReporter;
  trace?: Tracer;
}

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

/** The image, its config, and its layers as directories (lowest first). */
async function imageStage(ctx: RunContext, imageName: string, flags: RunFlags, trace: Tracer) {
  const t = performance.now();
  const image = await resolveImage(ctx, imageName, flags.pull);
  const config = await readConfig(ctx.store, image);
  const layers = image.layers.map((l) => ctx.store.layerDiffDir(l.chainId));
  trace(`image ${imageName} → ${image.id} (${layers.length} layers)`, performance.now() - t);
  const layerDirs = image.layers.map((l, i) => ({
    dir: layers[i] as string,
    opaqueDirs: l.opaqueDirs,
  }));
  return { image, config, layers, layerDirs };
}

type ImageStage = Awaited<ReturnType<typeof imageStage>>;

/**
 * -p and -P: the requests (checked before anything is created) and the
 * ports the container exposes (the image's and the published ones, as
 * Docker lists them in ps and inspect). With --network host they are
 * discarded with Docker's warning; with none, kept but never published (Docker).
 */
function portsStage(img: ImageStage, flags: RunFlags) {
  const explicit = flags.publish ?? [];
  const exposed: Record<string, unknown> = { ...img.config.config?.ExposedPorts };
  for (const key of flags.expose ?? []) exposed[key] = {};
  checkPublishable(explicit);
  // -P's requests are read now: bad ExposedPorts in the image are refused before anything is made.
  if (flags.publishAll) publishAllRequests(exposed, explicit);
  if (flags.network === "host" && (explicit.length > 0 || flags.publishAll)) {
    process.stderr.write("WARNING: Published ports are discarded when using host network mode\n");
  }
  const keys = new Set(Object.keys(exposed));
  for (const r of explicit) keys.add(portKey(r.containerPort, r.proto));
  return {
    portRequests: explicit.length > 0 ? explicit : undefined,
    publishAll: flags.publishAll || undefined,
    exposedPorts: keys.size > 0 ? [...keys] : undefined,
  };
}

/** Everything decided before anything is created: ID, name, user namespace, user, mounts. */
interface Identity {
  id: string;
  name: string;
  userns: UsernsState | undefined;
  /** Host owner of what is made for the container's root. */
  owner: { uid: number; gid: number };
  user: ResolvedUser;
  hostname: string;
  paths: ContainerPaths;
  mounts: ResolvedMounts;
  /** Volumes are idmapped (else, under a user namespace, their owners are shifted). */
  idmapVolumes: boolean;
  /** --group-add gids and --device nodes, looked up before anything is made. */
  extras: SecurityLimits;
}

interface SecurityLimits {
  groupAdd: number[];
  devices: { node: SpecDevice; access: string }[];
}

/**
 * --group-add, --device and --ulimit, checked against the image and the
 * host: bad input is refused before anything is created.
 */
function securityLimits(
  flags: RunFlags,
  group: string | undefined,
  userns: boolean,
): SecurityLimits {
  if (userns) checkUlimitsInUserns(flags.ulimits ?? [], callerHardLimits());
  const devices = (flags.devices ?? []).flatMap((m) => {
    checkContainerPath(m);
    return gatherDevices(m).map((node) => ({ node, access: m.CgroupPermissions }));
  });
  return { groupAdd: resolveGroupAdd(flags.groupAdd ?? [], group), devices };
}

async function identityStage(ctx: RunContext, img: ImageStage, flags: RunFlags): Promise<Identity> {
  const { root } = ctx.store;
  const id = randomBytes(32).toString("hex");
  const userns = flags.userns === "host" ? undefined : await loadUserns(root);
  if (userns) assertSearchable(root);
  const passwd = await readImageFile(img.layerDirs, "/etc/passwd");
  const group = await readImageFile(img.layerDirs, "/etc/group");
  const user = resolveUser(flags.user ?? img.config.config?.User ?? "", passwd, group);
  const extras = securityLimits(flags, group, userns !== undefined);
  // Checked before anything is created: a duplicate mount point is bad input.
  const volumes = flags.imageVolumes === false ? undefined : img.config.config?.Volumes;
  const inherited = await volumesFrom(root, flags.volumesFrom ?? []);
  const mounts = resolveMounts(root, containerMounts(flags.mounts, volumes, inherited));
  const idmapVolumes =
    userns !== undefined &&
    hostMounts(mounts.points).length > 0 &&
    (await idmappedMountsWork(root, userns, img.layers[0] as string));
  return {
    id,
    name: await claimName(root, flags.name, id),
    userns,
    owner: userns ? { uid: userns.uid.hostID, gid: userns.gid.hostID } : { uid: 0, gid: 0 },
    user,
    hostname: flags.hostname ?? id.slice(0, 12),
    paths: containerPaths(root, id),
    mounts,
    idmapVolumes,
    extras,
  };
}

function newState(
  who: Identity,
  image: ImageRecord,
  imageName: string,
  flags: RunFlags,
): ContainerState {
  return {
    id: who.id,
    name: who.name,
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
    mounts: who.mounts.points,
    binds: who.mounts.binds,
    tmpfs: Object.keys(who.mounts.tmpfsFlags).length > 0 ? who.mounts.tmpfsFlags : undefined,
    shmSize: flags.shmSize,
    volumesFrom: flags.volumesFrom?.length
      ? flags.volumesFrom.map((v) => (v.mode ? `${v.container}:${v.mode}` : v.container))
      : undefined,
    ...networkFields(flags),
    dns: flags.dns,
    extraHosts: flags.extraHosts?.length ? flags.extraHosts : undefined,
    ...securityState(flags),
  };
}

/** What inspect shows of the security flags (HostConfig.SecurityOpt, Privileged, Ulimits, GroupAdd, Devices). */
function securityState(
  flags: RunFlags,
): Pick<ContainerState, "securityOpt" | "privileged" | "ulimits" | "groupAdd" | "devices"> {
  return {
    securityOpt: flags.security?.securityOpt.length ? flags.security.securityOpt : undefined,
    privileged: flags.privileged || undefined,
    ulimits: flags.ulimits?.length ? flags.ulimits : undefined,
    groupAdd: flags.groupAdd?.length ? flags.groupAdd : undefined,
    devices: flags.devices?.length ? flags.devices : undefined,
  };
}

/** HostConfig.NetworkMode (the first network) and the networks asked for. */
function networkFields(flags: RunFlags): Pick<ContainerState, "networkMode" | "networkRequests"> {
  if (flags.network !== "bridge") return {};
  const requests = flags.networks?.length ? flags.networks : [{ network: DEFAULT_NETWORK }];
  return { networkMode: requests[0]?.network, networkRequests: requests };
}

/** How far a run got: what its clean-up after a failure must undo. */
interface Progress {
  created: Created;
  /** Ready to run (cgroup made): from here the volumes are the container's. */
  launched?: Launched;
  /** A missing --mount source is bad input: no container is left for it (Docker). */
  badInput: boolean;
  /** Its `create` event is journalled: removing it now is a `destroy`. */
  createdEvent?: boolean;
}

/** A `run` under way: what it was asked, what it decided, how far it got. */
interface NewRun {
  ctx: RunContext;
  imageName: string;
  flags: RunFlags;
  trace: Tracer;
  img: ImageStage;
  who: Identity;
  state: ContainerState;
  progress: Progress;
}

/** The container's directory, /etc files and state.json; then its volumes and bind mounts. */
async function filesStage({ ctx, img, who, state, flags, progress, trace }: NewRun) {
  let t = performance.now();
  await prepareContainerDir(who.paths, img.layers.length, who.owner);
  const etc = {
    hostname: who.hostname,
    network: flags.network,
    dns: flags.dns ?? NO_DNS_FLAGS,
    extraHosts: flags.extraHosts ?? [],
    resolver: await resolverFor(flags),
  };
  await writeEtcFiles(who.paths, etc, who.owner);
  await writeState(who.paths, state);
  trace(`container ${who.id.slice(0, 12)} (${who.name}): ${who.paths.dir}`, performance.now() - t);
  if (who.mounts.requests.length === 0) return;
  // After state.json names the volumes: `volume rm` now sees them in use.
  t = performance.now();
  const shift = who.userns && !who.idmapVolumes ? who.owner : undefined;
  const image = { layers: img.layerDirs };
  try {
    await prepareMounts(ctx.store.root, who.mounts, image, shift, progress.created);
  } catch (err) {
    if (err instanceof MiniboxError) progress.badInput = true;
    throw err;
  }
  trace(`volumes and bind mounts: ${who.mounts.requests.length}`, performance.now() - t);
}

/** The spec: image config + flags, a pure function; kept in config.json for learners to read. */
async function specStage(run: NewRun) {
  const { img, who, imageName, flags } = run;
  const { paths, userns } = who;
  const settings: RunSettings = {
    id: who.id,
    name: who.name,
    image: { id: img.image.id, ref: imageName, config: img.config },
    rootfs: paths.rootfs,
    command: flags.command,
    entrypoint: flags.entrypoint,
    env: flags.env,
    workdir: flags.workdir,
    user: who.user,
    hostname: who.hostname,
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
    labels: { ...(img.config.config?.Labels ?? {}), ...flags.labels },
    hostFiles: { hostname: paths.hostname, hosts: paths.hosts, resolvConf: paths.resolvConf },
    rlimitHard: { nofile: nofileHardLimit() },
    volumes: volumesOf(who),
    tmpfs: who.mounts.tmpfs,
    shmSize: flags.shmSize,
    ...securitySettings(flags),
    ulimits: flags.ulimits,
    groupAdd: who.extras.groupAdd,
    sysctls: flags.sysctls,
    devices: who.extras.devices,
  };
  const spec = generateSpec({
    ...settings,
    seccomp: await seccompProfile(run, settings),
    seccompNamed: run.flags.security?.seccomp !== undefined,
  });
  await writeFile(paths.config, `${JSON.stringify(spec, null, 2)}\n`);
  // Written with the state's next write (the launch's): ps reads it there.
  run.state.summary = specSummary(spec);
  return spec;
}

/**
 * The container's seccomp profile (minibox's default unless --security-opt
 * names one), already resolved for its bounding set and this host through
 * the store's cache: on a hit neither the default profile nor the resolver
 * is loaded (seccomp/cache.ts).
 */
async function seccompProfile(run: NewRun, s: RunSettings): Promise<RunSettings["seccomp"]> {
  const choice = run.flags.security?.seccomp ?? "default";
  // --privileged runs unfiltered unless a profile file is named (Docker).
  if ((s.privileged && choice === "default") || choice === "unconfined" || !s.host)
    return "unconfined";
  const t = performance.now();
  const { spec, cache } = await resolvedSeccomp(
    rootLayout(run.ctx.store.root).seccompCache,
    choice,
    {
      arch: s.host.arch,
      capabilities: specCapabilities(s).bounding,
      kernel: s.host.kernel,
    },
  );
  run.trace(
    `seccomp profile ${cache === "hit" ? "from the store's cache" : "resolved"}`,
    performance.now() - t,
  );
  return spec;
}

/**
 * no_new_privs, --privileged and what they need of the host: its arch and
 * kernel (for the seccomp profile: seccompProfile), its device nodes (--privileged).
 */
function securitySettings(flags: RunFlags): Partial<RunSettings> {
  return {
    host: { arch: process.arch, kernel: release() },
    privileged: flags.privileged,
    hostDevices: flags.privileged ? hostDevices() : undefined,
    callerCapabilities: flags.privileged ? callerCapabilities() : undefined,
    noNewPrivileges: flags.security?.noNewPrivileges ?? true,
  };
}

function volumesOf(who: Identity) {
  return hostMounts(who.mounts.points).map((m) => ({
    source: m.Source,
    destination: m.Destination,
    readOnly: !m.RW,
    idmap: who.idmapVolumes,
  }));
}

/** Layers, cgroup and plan (shared with `start`), then the executor. */
async function launchStage(run: NewRun, spec: Spec) {
  const { ctx, flags, img, who, state, trace } = run;
  const launched = await prepareLaunch(ctx, {
    image: img.image,
    spec,
    state,
    paths: who.paths,
    userns: who.userns,
    trace,
    // The device cgroup's rules come from the spec (the defaults and --device).
    limits: { ...flags.limits, devices: spec.linux.resources.devices },
    init: flags.init,
    interactive: flags.interactive && !flags.detach,
    detach: flags.detach,
    warn: (line) => process.stderr.write(`minibox: ${line}\n`),
  });
  run.progress.launched = launched;
  return flags.detach ? await startDetached(launched) : await runInForeground(launched);
}

/**
 * A run that failed before or while launching: the container is recorded
 * as exited with 125 (or removed with --rm or bad input). Before the
 * executor ran, what this run created for it goes, nothing half-made
 * stays; once it ran, its volumes are the container's, and --rm takes the
 * anonymous ones (Docker).
 */
async function failedRun(run: NewRun, err: unknown) {
  const { who, state, flags, progress } = run;
  const { root } = run.ctx.store;
  // The run ended and finish() recorded how (OOM killed: 137, a command not
  // found: 127…); its error only carries that message out. Not a failed start.
  if (state.status === "exited") return;
  await progress.launched?.cgroup.destroy().catch(() => undefined);
  await releaseNetwork(state).catch(() => undefined);
  state.status = "exited";
  state.exitCode = 125;
  state.error = (err as Error).message;
  state.finishedAt = new Date().toISOString();
  if (flags.rm || progress.badInput) {
    const actor = containerActor(root, state);
    await removeContainerDir(who.paths, who.name);
    if (progress.createdEvent) await recordEvent(root, "container", "destroy", actor);
  } else await writeState(who.paths, state).catch(() => undefined);
  if (!progress.launched) await undoMounts(root, progress.created);
  else if (flags.rm) await removeAnonymousVolumes(root, state.mounts);
}

async function runContainerSteps(
  ctx: RunContext,
  imageName: string,
  flags: RunFlags,
): Promise<number> {
  const trace = ctx.trace ?? NO_TRACE;
  await ctx.store.init();
  await sweepContainers(ctx.store.root);
  await checkNetworks(flags);
  const img = await imageStage(ctx, imageName, flags, trace);
  const ports = portsStage(img, flags);
  const who = await identityStage(ctx, img, flags);
  const healthcheck = mergeHealthcheck(
    img.config.config?.Healthcheck as HealthConfig | undefined,
    flags.healthcheck,
  );
  const shell = img.config.config?.Shell as string[] | undefined;
  const healthShell = healthcheck && shell?.length ? shell : undefined;
  const state = {
    ...newState(who, img.image, imageName, flags),
    ...ports,
    healthcheck,
    healthShell,
  };
  const progress: Progress = { created: { volumes: [], dirs: [] }, badInput: false };
  const run: NewRun = { ctx, imageName, flags, trace, img, who, state, progress };
  try {
    await filesStage(run);
    const spec = await specStage(run).catch((err) => {
      // Refused flags (limits, capabilities, a seccomp profile): no container is left (Docker).
      if (err instanceof MiniboxError) progress.badInput = true;
      throw err;
    });
    // Once its config.json is written: the event carries its labels.
    await recordContainerEvent(ctx.store.root, "create", state);
    progress.createdEvent = true;
    return await launchStage(run, spec);
  } catch (err) {
    await failedRun(run, err);
    throw err;
  }
}

/**
 * On a user-defined network, names are resolved by that network's resolver
 * on its gateway (dns.ts): the first such network's gateway, as Docker's
 * embedded DNS serves a container on any user-defined network.
 */
async function resolverFor(flags: RunFlags): Promise<string | undefined> {
  const req = (flags.networks ?? []).find((r) => r.network !== DEFAULT_NETWORK);
  return req ? (await getNetwork(NETWORK_ROOT, req.network)).gateway : undefined;
}

/** A network that does not exist is bad input: refused before anything is made (Docker). */
async function checkNetworks(flags: RunFlags): Promise<void> {
  for (const req of flags.networks ?? []) {
    if (req.network !== DEFAULT_NETWORK) await getNetwork(NETWORK_ROOT, req.network);
  }
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
  restartedState(state);
  // On disk before an address is leased: a concurrent sweep then sees a
  // container being started (not an exited one whose lease it may drop).
  if (state.networkMode) await writeState(paths, state);
  const input = {
    image,
    spec,
    state,
    paths,
    userns,
    trace,
    limits: limitsFromSpec(spec),
    init: spec.annotations["minibox.init"] === "true",
    interactive: false,
    detach: true,
  };
  let launched: Launched;
  try {
    launched = await prepareLaunch({ store }, input);
  } catch (err) {
    if (state.networkMode) await notStarted(paths, state);
    throw err;
  }
  await startDetached(launched, false);
}

/** `start` failed before the executor ran: its address goes, it stays exited. */
async function notStarted(paths: ContainerPaths, state: ContainerState) {
  await releaseNetwork(state).catch(() => undefined);
  state.status = "exited";
  await writeState(paths, state).catch(() => undefined);
}

/** Started by a restart policy: keep counting; started by the user: begin again. */
function restartedState(state: ContainerState): void {
  const byPolicy =
    state.status === "exited" && !state.manuallyStopped && (state.restartCount ?? 0) > 0;
  Object.assign(state, {
    status: "created",
    miniboxPid: process.pid,
    // The last run's monitor may still be handing over to its exit hook: a
    // hook that comes now must not take this run for its own (finalizeExit
    // compares monitor PIDs), so the old PIDs go before anything is written.
    monitorPid: undefined,
    pid: undefined,
    exitCode: undefined,
    error: undefined,
    oomKilled: false,
    manuallyStopped: false,
    restartCount: byPolicy ? state.restartCount : 0,
  });
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
