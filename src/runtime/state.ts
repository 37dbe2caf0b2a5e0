/**
 * Container state on disk: <root>/containers/<id>/state.json, written whole
 * and renamed into place, and what a later command does with a container
 * whose minibox died.
 */
import { readdirSync, readFileSync } from "node:fs";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename } from "node:path";
import { type ContainerPaths, containerPaths, rootLayout } from "../layout.js";
import type { DeviceMapping } from "./devices.js";
import type { HealthConfig } from "./health/config.js";
import type { DnsFlags } from "./network/dns-config.js";
import type { EndpointRequest, NetworkEndpoint } from "./network/endpoint.js";
import type { PortBinding, PortRequest } from "./network/ports.js";
import type { SpecSummary } from "./spec-summary.js";
import type { Ulimit } from "./ulimits.js";
import type { MountPoint } from "./volumes.js";

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
  /** --restart: applied by the exit hook (see lifecycle.ts finalizeExit). */
  restartPolicy?: {
    name: "no" | "always" | "unless-stopped" | "on-failure";
    maximumRetryCount: number;
  };
  restartCount?: number;
  /** Set by stop/kill: a restart policy then leaves the container stopped, as in Docker. */
  manuallyStopped?: boolean;
  /** -d: the monitor process (the executor, staying behind). */
  monitorPid?: number;
  logPath?: string;
  /** --log-opt max-size / max-file, kept for `start` and `logs`. */
  logMaxSize?: number;
  logMaxFiles?: number;
  /** Volumes and bind mounts (inspect's Mounts; `volume rm` checks them). */
  mounts?: MountPoint[];
  /** The -v values that name a host path or a volume (inspect's HostConfig.Binds). */
  binds?: string[];
  /** --tmpfs flags, destination → options as given (inspect's HostConfig.Tmpfs). */
  tmpfs?: Record<string, string>;
  /** --shm-size in bytes (inspect's HostConfig.ShmSize; absent: 64 MiB). */
  shmSize?: number;
  /** --volumes-from values, "C" or "C:ro" (inspect's HostConfig.VolumesFrom). */
  volumesFrom?: string[];
  /**
   * HostConfig.NetworkMode: "bridge" or a user-defined network's name, the
   * first it was run on (absent: none or host, which the spec's namespaces tell).
   */
  networkMode?: string;
  /** The networks it is on, in order (absent: only networkMode's; see network/attachments.ts). */
  networkRequests?: EndpointRequest[];
  /**
   * While it runs: one endpoint per network, eth0 first (released when it
   * stops). A single object in state written before there were several.
   */
  network?: NetworkEndpoint[] | NetworkEndpoint;
  /** --dns, --dns-search, --dns-option (inspect's HostConfig.Dns…); absent when none was given. */
  dns?: DnsFlags;
  /** --add-host entries, "NAME:IP" (inspect's HostConfig.ExtraHosts); host-gateway resolved at each start. */
  extraHosts?: string[];
  /** -p as asked (kept: each start publishes them again; inspect's HostConfig.PortBindings). */
  portRequests?: PortRequest[];
  /** -P: every exposed port, to a free host port, at each start. */
  publishAll?: boolean;
  /** The ports it exposes: the image's ExposedPorts and the -p ones ("8080/tcp"). */
  exposedPorts?: string[];
  /** While it runs: the host ports chosen for them (ps, port, inspect). */
  ports?: PortBinding[];
  /** --security-opt as Docker records it (inspect's HostConfig.SecurityOpt). */
  securityOpt?: string[];
  /** --privileged (inspect's HostConfig.Privileged). */
  privileged?: boolean;
  /** --ulimit as given (inspect's HostConfig.Ulimits). */
  ulimits?: Ulimit[];
  /** --group-add as given, names or numbers (inspect's HostConfig.GroupAdd). */
  groupAdd?: string[];
  /** --device as given (inspect's HostConfig.Devices). */
  devices?: DeviceMapping[];
  /** The image's HEALTHCHECK merged with --health-* (inspect's Config.Healthcheck; health/config.ts). */
  healthcheck?: HealthConfig;
  /** The image's SHELL, which a CMD-SHELL check runs through (absent: /bin/sh -c). */
  healthShell?: string[];
  /** What ps shows of the spec (spec-summary.ts); absent in state written before it was kept. */
  summary?: SpecSummary;
}

export async function writeState(paths: ContainerPaths, state: ContainerState): Promise<void> {
  const tmp = `${paths.state}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`);
  await rename(tmp, paths.state);
}

/**
 * One container's state, or undefined when it has none (being created or
 * removed right now, or no such ID). Read synchronously: a state file is
 * under 1 kB, and a sync read costs ~20 µs where an awaited one costs a
 * thread-pool round trip per open, read and close (with 100 containers,
 * `ps` spent ~10 ms more in those hops than in the reads).
 */
export function readState(root: string, id: string): ContainerState | undefined {
  try {
    return JSON.parse(readFileSync(containerPaths(root, id).state, "utf8")) as ContainerState;
  } catch {
    return undefined;
  }
}

/** The IDs of every container directory, from one directory listing (no state read). */
export function containerIds(root: string): string[] {
  try {
    return readdirSync(rootLayout(root).containers);
  } catch {
    return [];
  }
}

/** Every container's state: one listing and one small read each (see readState). */
export async function listContainers(root: string): Promise<ContainerState[]> {
  const out: ContainerState[] = [];
  for (const id of containerIds(root)) {
    const state = readState(root, id);
    if (state) out.push(state);
  }
  return out;
}

/**
 * The part of a container's directory that is its filesystem: overlayfs'
 * upper/ and work/, and the mount points (rootfs/, lower/, staged/). Most of
 * --rm's unlinks and rmdirs are here (each freed block is a synchronous
 * discard on a `discard` mount), so a foreground --rm starts this as soon as
 * the program has ended, alongside the cgroup and event work, and removes
 * the rest (state.json last) with removeContainerDir. Errors are left for
 * that call, which removes whatever is still there.
 */
export async function removeContainerFilesystem(paths: ContainerPaths): Promise<void> {
  const parts = [paths.upper, paths.work, paths.rootfs, paths.lowers, paths.staged];
  await Promise.all(
    parts.map((p) => rm(p, { recursive: true, force: true }).catch(() => undefined)),
  );
}

/** Remove a container's directory, then free its name. */
export async function removeContainerDir(paths: ContainerPaths, name?: string): Promise<void> {
  await rm(paths.dir, { recursive: true, force: true });
  if (name) {
    const file = rootLayout(paths.root).name(name);
    const owner = (await readFile(file, "utf8").catch(() => "")).trim();
    if (owner === basename(paths.dir)) await rm(file, { force: true });
  }
}

export { processAlive as alive } from "../sys/process.js";
