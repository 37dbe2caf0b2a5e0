/**
 * Launching a prepared container — a new one (`run`) or a stopped one again
 * (`start`, restart policies): its layers as its root will see them, its
 * cgroup, the executor's plan; then the executor, in the foreground or
 * detached as the container's monitor; and the bookkeeping when it ends.
 */

import { statSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { MiniboxError } from "../errors.js";
import {
  actorOf,
  containerActor,
  recordContainerEvent,
  recordDie,
} from "../events/container-events.js";
import { recordEvent } from "../events/journal.js";
import type { ImageRecord, Store } from "../image/store.js";
import { type ContainerPaths, rootLayout } from "../layout.js";
import { type Cgroup, type CgroupLimits, createCgroup } from "./cgroups/index.js";
import {
  abandonEarly,
  type EarlyExecutor,
  Execution,
  type ExecutorEvents,
  type ExecutorResult,
  spawnEarly,
} from "./executor.js";
import { explainFailure } from "./failure.js";
import { healthLayout, writeProbePlan } from "./health/probe.js";
import type { UsernsState } from "./idmap.js";
import { idmappedMountsWork } from "./idmap-probe.js";
import { humanLimit } from "./limits.js";
import { endpointsOf, requestsOf } from "./network/attachments.js";
import { withHostGateway } from "./network/dns-config.js";
import {
  attachRequest,
  detachNetwork,
  hostsWithAddress,
  type NetworkEndpoint,
  publishPorts,
} from "./network/endpoint.js";
import { everyInterfaceWarning, launchRequests } from "./network/ports.js";
import { buildPlan, type Plan } from "./plan.js";
import { compiledSeccomp } from "./seccomp/cache.js";
import { shiftedLayers } from "./shifted-layers.js";
import { forwardSignals } from "./signals.js";
import type { Spec } from "./spec.js";
import {
  type ContainerState,
  removeContainerDir,
  removeContainerFilesystem,
  writeState,
} from "./state.js";
import { NO_TRACE, type Tracer } from "./trace.js";
import { removeAnonymousVolumes } from "./volumes.js";

export interface LaunchInput {
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
  /** Where `run` says what the user should know (ports open on every interface); `start` is silent. */
  warn?: (line: string) => void;
}

/** What the executor needs of a launch, besides the spec. */
export interface Launched {
  /** minibox's root directory (--root). */
  root: string;
  plan: Plan;
  spec: Spec;
  state: ContainerState;
  cgroup: Cgroup;
  paths: ContainerPaths;
  trace: Tracer;
  /** The executor, spawned as soon as the cgroups existed (spawnEarly), waiting for `plan`. */
  early?: EarlyExecutor;
}

/** Bind mounts (other than the /etc files) whose source is a file: their mount point is a file too. */
function fileMounts(spec: Spec): string[] {
  return spec.mounts
    .filter((m) => m.type === "bind" && !m.source.startsWith(dirname(spec.root.path)))
    .filter((m) => statSync(m.source, { throwIfNoEntry: false })?.isFile())
    .map((m) => m.destination);
}

/** Idmapped layers where the kernel can; else copies shifted into the container's range. */
async function layersFor(store: Store, input: LaunchInput) {
  const { image, userns, trace } = input;
  const layers = image.layers.map((l) => store.layerDiffDir(l.chainId));
  if (!userns) return { layers, idmapped: false };
  if (await idmappedMountsWork(store.root, userns, layers[0] as string)) {
    return { layers, idmapped: true };
  }
  return { layers: await shiftedLayers({ store }, image, userns, trace), idmapped: false };
}

/**
 * The monitor becomes this command when the container exits: minibox
 * itself records the exit, removes the cgroup and applies --rm.
 */
function exitHook(store: Store, id: string): string[] {
  return [
    process.execPath,
    process.argv[1] as string,
    "--root",
    store.root,
    "container-exited",
    id,
  ];
}

/**
 * Bridge networks: per network an address and the host side (endpoint.ts),
 * recorded in the state as each is made so that any failure from here on
 * releases them; the container's /etc/hosts names its first address (and
 * --add-host's host-gateway the first network's gateway).
 */
async function attachNetworks(root: string, input: LaunchInput): Promise<NetworkEndpoint[]> {
  const { state, paths, spec, trace } = input;
  const requests = requestsOf(state);
  if (requests.length === 0) return [];
  const notice = (line: string) => process.stderr.write(`minibox: ${line}\n`);
  const endpoints: NetworkEndpoint[] = [];
  state.network = endpoints;
  for (const [index, req] of requests.entries()) {
    const who = { id: state.id, name: state.name, dns: state.dns?.servers };
    endpoints.push(await attachRequest(root, who, req, index, trace, notice));
  }
  const first = endpoints[0] as NetworkEndpoint;
  // Published ports go to the first network's address (as podman's).
  await publishOnNetwork(input, first);
  const hosts = await readFile(paths.hosts, "utf8").catch(() => "");
  const extra = withHostGateway(hosts, state.extraHosts ?? [], first.gateway);
  await writeFile(paths.hosts, hostsWithAddress(extra, first.ip, spec.hostname, state.name));
  return endpoints;
}

/**
 * -p/-P: the host ports chosen and recorded (in the state too, for ps,
 * port and inspect); the executor holds them (input to the plan).
 */
async function publishOnNetwork(input: LaunchInput, endpoint: NetworkEndpoint) {
  const { state, trace } = input;
  const requests = launchRequests(state);
  if (requests.length === 0) return;
  const ports = await publishPorts(state.id, endpoint, requests, trace);
  state.ports = ports;
  const warning = everyInterfaceWarning(ports);
  if (warning) input.warn?.(warning);
}

/**
 * Undo attachNetworks (when the container stopped, or its launch failed);
 * idempotent. A failure is said, not thrown: the exit status matters more,
 * and the next command's sweep tries again (the lease is dropped there).
 */
export async function releaseNetwork(state: ContainerState, trace = NO_TRACE) {
  for (const endpoint of endpointsOf(state)) {
    try {
      await detachNetwork(state.id, endpoint, trace);
    } catch (err) {
      const id = state.id.slice(0, 12);
      process.stderr.write(`minibox: releasing the network of ${id}: ${(err as Error).message}\n`);
    }
  }
  state.network = undefined;
  state.ports = undefined;
}

export async function prepareLaunch(ctx: { store: Store }, input: LaunchInput): Promise<Launched> {
  const { store } = ctx;
  const { spec, state, paths, trace } = input;
  const { layers, idmapped } = await layersFor(store, input);
  const networks = await attachNetworks(store.root, input);
  const cgroup = await createCgroup(state.id, input.limits, {
    parent: state.cgroupParent,
    trace: (line) => trace(line),
  });
  // The executor now, so that its cgroup warm-up (the first cgroup move
  // waits for an RCU grace period, native/cgroup-warm.c) runs while the
  // plan is built: spawned after the plan, it started ~10 ms later and the
  // init's join waited for the rest of the grace period.
  const early = spawnEarly({
    trace: trace !== NO_TRACE,
    detach: input.detach,
    warmCgroup: cgroup.procsFiles[0],
  });
  try {
    const plan = await planFor(store, input, { layers, idmapped, networks, cgroup });
    return { root: store.root, plan, spec, state, cgroup, paths, trace, early };
  } catch (err) {
    await abandonEarly(early);
    throw err;
  }
}

async function planFor(
  store: Store,
  input: LaunchInput,
  made: {
    layers: string[];
    idmapped: boolean;
    networks: Awaited<ReturnType<typeof attachNetworks>>;
    cgroup: Cgroup;
  },
): Promise<Plan> {
  const { spec, state, paths, trace } = input;
  const { layers, idmapped, networks, cgroup } = made;
  const seccomp = await seccompFilter(store.root, spec, trace);
  return buildPlan(spec, {
    containerDir: paths.dir,
    fileMounts: fileMounts(spec),
    layers,
    idmappedLayers: idmapped,
    cgroupProcs: cgroup.procsFiles,
    waitForGo: false,
    init: input.init,
    interactive: input.interactive,
    // Output goes through the executor into the json-file log; with a
    // terminal (-t), what the executor relays is logged (one stream, as Docker).
    log: { file: paths.log, maxSize: state.logMaxSize, maxFiles: state.logMaxFiles },
    detach: input.detach ? { exitFile: paths.exit, hook: exitHook(store, state.id) } : undefined,
    health: healthLayout(paths, state.healthcheck, {
      file: rootLayout(store.root).events,
      actor: actorOf(state, spec.annotations ?? {}),
    }),
    networks,
    heldPorts: state.ports,
    arch: process.arch,
    seccomp,
  });
}

/** The spec's linux.seccomp compiled, from the store's cache when it is there (none: unconfined). */
async function seccompFilter(root: string, spec: Spec, trace: Tracer) {
  if (!spec.linux.seccomp) return undefined;
  const t = performance.now();
  const { filter, cache } = await compiledSeccomp(
    rootLayout(root).seccompCache,
    spec.linux.seccomp,
    process.arch,
  );
  trace(
    `seccomp filter ${cache === "hit" ? "from the store's cache" : "compiled"}`,
    performance.now() - t,
  );
  return filter;
}

function startExecution(l: Launched, detach: boolean, onPid?: ExecutorEvents["onPid"]) {
  let early = l.early;
  l.early = undefined;
  if (early && early.detach !== detach) {
    void abandonEarly(early);
    early = undefined;
  }
  const spawnedAt = early?.spawnedAt ?? performance.now();
  return new Execution(
    l.plan,
    {
      trace: l.trace !== NO_TRACE,
      detach,
      planFile: l.paths.plan,
      events: {
        onTrace: (step, start, duration, extra) =>
          l.trace(`${step.describe}${extra ? ` (${extra})` : ""}`, duration, spawnedAt + start),
        onPid,
      },
    },
    early,
  );
}

/** The health check's exec plan, once the init's PID is known (the monitor retries until it is there). */
async function probePlan(l: Launched, pid: number | undefined): Promise<void> {
  if (pid === undefined) return;
  const { root, paths, spec, state, cgroup } = l;
  const { healthcheck, healthShell } = state;
  await writeProbePlan(root, paths, spec, healthcheck, pid, cgroup.procsFiles, healthShell);
}

/** -d: wait until the program runs, record the monitor, print the ID. */
export async function startDetached(l: Launched, printId = true): Promise<number> {
  const execution = startExecution(l, true);
  const result = await execution.startedOrDone();
  if (!result.started) return finish(l, result);
  const { state, paths } = l;
  state.pid = result.pid;
  state.monitorPid = execution.child.pid;
  await probePlan(l, result.pid);
  state.status = "running";
  state.startedAt = new Date().toISOString();
  state.logPath = paths.log;
  await writeState(paths, state);
  await recordContainerEvent(l.root, "start", state);
  if (printId) process.stdout.write(`${state.id}\n`);
  return 0;
}

/** In the foreground: signals sent to minibox go to the container; minibox waits for its end. */
export async function runInForeground(l: Launched): Promise<number> {
  const { state, paths } = l;
  const execution = startExecution(l, false, async (pid) => {
    await probePlan(l, pid);
    state.pid = pid;
    state.status = "running";
    state.startedAt = new Date().toISOString();
    await writeState(paths, state);
    await recordContainerEvent(l.root, "start", state);
  });
  const forwarded: NodeJS.Signals[] = ["SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2"];
  if (!process.stdin.isTTY) forwarded.push("SIGINT", "SIGQUIT");
  const stopForwarding = forwardSignals(execution, forwarded);
  // Settled either way: a failed spawn is reported through `ended`.
  const gone = execution.done.finally(stopForwarding).catch(() => undefined);
  // From the exit status on: the cgroup, the network and the events while
  // the executor exits (finish waits for it only to remove the directory).
  return finish(l, await execution.ended, gone);
}

/** The exit status (Docker's numbers), and the message when it did not start or ran out of memory. */
function outcome(l: Launched, result: ExecutorResult, oom: boolean) {
  let code: number;
  let message: string | undefined;
  if (result.failure && !result.started) {
    ({ code, message } = explainFailure(result.failure, l.spec.process.args[0], 125));
  } else {
    code = result.exitCode ?? (result.signal !== undefined ? 128 + result.signal : 125);
  }
  if (oom) {
    code = 137;
    message = `container ${l.state.name} was OOM killed: it used all of its ${humanLimit(l.spec)} memory limit`;
  }
  return { code, message };
}

/**
 * `network connect`/`disconnect` may have changed the container's networks
 * on disk while it ran in the foreground: release what it has now, and keep
 * what it asks for.
 */
async function adoptNetworkChanges(paths: ContainerPaths, state: ContainerState): Promise<void> {
  // Before the PID was recorded the disk has not seen this run's endpoints:
  // the state in memory is all there is.
  if (state.pid === undefined) return;
  try {
    const now = JSON.parse(await readFile(paths.state, "utf8")) as ContainerState;
    if (now.pid !== state.pid) return;
    state.network = now.network;
    state.networkRequests = now.networkRequests;
  } catch {
    // Unreadable: keep the state in memory.
  }
}

/**
 * The run's end: cgroup, network, state and events; --rm's removal.
 * `executorGone`: the executor's exit, when it may still be under way (the
 * foreground run acts on its exit status line): its private mount
 * namespace holds mounts on the container's directory until then.
 */
async function finish(
  l: Launched,
  result: ExecutorResult,
  executorGone: Promise<unknown> = Promise.resolve(),
): Promise<number> {
  const { state, cgroup, paths } = l;
  await adoptNetworkChanges(paths, state);
  // --rm of a program that ran: its filesystem is mounted nowhere any more
  // (the init's mount namespace went with it before the exit line; the
  // executor left its own when the program started, native/steps-mount.c),
  // so its removal overlaps the cgroup, network and event work below
  // (started after the read above, which would otherwise queue behind it
  // in libuv's four threads). state.json goes last (removeContainerDir): a
  // crash in between leaves a container that `rm` and the sweep still find.
  const filesystemGone =
    state.autoRemove && result.started ? removeContainerFilesystem(paths) : Promise.resolve();
  // Awaited below; handled now too, so that a failure of the cgroup or network work first
  // does not leave it rejected with no handler (node would end the process on that).
  filesystemGone.catch(() => undefined);
  const oom = cgroup.oomKilled();
  await cgroup.destroy();
  await releaseNetwork(state, l.trace);
  // Only a run that started dies (a start that failed has no start event either).
  const started = state.status === "running";
  state.status = "exited";
  state.finishedAt = new Date().toISOString();
  state.oomKilled = oom;
  const { code, message } = outcome(l, result, oom);
  state.exitCode = code;
  if (message) state.error = message;
  l.trace(`exit status ${code}${oom ? " (OOM killed)" : ""}`);
  if (started) await recordDie(l.root, state);
  if (state.autoRemove) {
    const actor = containerActor(l.root, state);
    await filesystemGone;
    await executorGone;
    await removeContainerDir(paths, state.name);
    // --rm takes the container's anonymous volumes with it (Docker).
    await removeAnonymousVolumes(l.root, state.mounts);
    await recordEvent(l.root, "container", "destroy", actor);
  } else await writeState(paths, state);
  // Never back before the executor is gone: the caller's next step may be its own exit.
  await executorGone;
  if (message) throw new MiniboxError(message, undefined, code);
  return code;
}
