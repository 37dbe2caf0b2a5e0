/**
 * What every part of the run plan needs to know, worked out once from the
 * spec and the container's layout: where the rootfs is, which namespaces
 * the container gets, who its root is on the host, which mount points the
 * plan must create.
 */
import type { NetworkEndpoint } from "../network/endpoint.js";
import type { PortBinding } from "../network/ports.js";
import type { CompiledFilter } from "../seccomp/compile.js";
import type { Spec } from "../spec.js";
import type { HealthStep } from "./steps.js";

export interface PlanLayout {
  /** The container's directory: lower/<n>, upper/, work/, rootfs/ live here. */
  containerDir: string;
  /** Layer directories (overlay form), lowest first. */
  layers: string[];
  /** Use idmapped mounts for the layers (else they are already shifted or shared with the host's ids). */
  idmappedLayers: boolean;
  /** cgroup.procs files the init's PID is written to before it runs. */
  cgroupProcs: string[];
  /** Stop after the clone until minibox says go (network set-up). */
  waitForGo: boolean;
  /** Run a minimal init as PID 1 (--init). */
  init: boolean;
  /** Keep stdin (-i); otherwise the container reads /dev/null. */
  interactive: boolean;
  /**
   * -d: the executor outlives minibox as the container's monitor: output
   * into a json-file log, the exit status into a file, then the hook runs.
   */
  detach?: { exitFile: string; hook: string[] };
  /**
   * The container's stdout/stderr go through the executor into a json-file
   * log (and, in the foreground, on to minibox's own stdout/stderr).
   * --log-opt max-size (bytes, 0 = never rotate) and max-file.
   */
  log?: { file: string; maxSize?: number; maxFiles?: number };
  /** A health check the monitor runs (HEALTHCHECK, run --health-*): see native/health.c. */
  health?: Omit<HealthStep, "op" | "describe">;
  /** Bind-mount destinations whose source is a file (a file, not a directory, is their mount point). */
  fileMounts?: string[];
  /**
   * Its bridge networks, in order (eth0 first): each a veth and an address
   * (absent or empty: loopback only, or the host's).
   */
  networks?: NetworkEndpoint[];
  /** -p/-P: the host ports the executor holds open while the container runs. */
  heldPorts?: PortBinding[];
  /** The host's architecture (process.arch), which the seccomp filter is compiled for. */
  arch?: string;
  /** linux.seccomp compiled (seccomp/cache.ts); required when the spec has one. */
  seccomp?: CompiledFilter;
  /**
   * minibox-runc: an OCI bundle's root directory, bound (recursively) where
   * the overlay would go — the container runs on the caller's rootfs, no layers.
   */
  rootfsBind?: string;
  /** minibox-runc create: the FIFO the init waits on, before its program, until `start`. */
  startFifo?: string;
  /** minibox-runc --console-socket: where the terminal's master end is sent (instead of minibox). */
  consoleSocket?: string;
  /**
   * minibox-runc on a cgroup v1 host: the container's cgroup directories,
   * which a `cgroup` mount shows, each at /sys/fs/cgroup/<hierarchy> (as runc).
   */
  cgroupV1Dirs?: string[];
  /** minibox-runc: the caller's descriptors 3.. the program gets (LISTEN_FDS, --preserve-fds). */
  passFds?: number;
}

export interface PlanContext {
  spec: Spec;
  layout: PlanLayout;
  /** Where the overlay is mounted (host path). */
  rootfs: string;
  /** The namespaces the container gets ("mount", "user", "network"…), made or joined. */
  namespaces: ReadonlySet<string>;
  /** Those it gets new (the rest are joined by path: config.json's `path`). */
  made: ReadonlySet<string>;
  userns: boolean;
  /** The host uid and gid of the container's root (0 and 0 without a user namespace). */
  root: { uid: number; gid: number };
  /** Idmapped mounts are made: the user namespace they map through serves layers and volumes alike. */
  idmapReady: boolean;
  /** Mount points the image may lack, as host paths under rootfs. */
  mountPoints: { dirs: Set<string>; files: Set<string> };
}

type IdMapping = { containerID: number; hostID: number; size: number };

function hostIdOf(mappings: IdMapping[] | undefined): number {
  return mappings?.find((m) => m.containerID === 0)?.hostID ?? 0;
}

/** /proc/<pid>/uid_map (or gid_map) text. */
export function mapText(mappings: IdMapping[]): string {
  return mappings.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join("");
}

/** Every directory from `root` down to `path`, for mkdir -p. */
export function parents(root: string, path: string): string[] {
  const parts = path.split("/").filter(Boolean);
  return parts.map((_, i) => `${root}/${parts.slice(0, i + 1).join("/")}`);
}

const ETC_FILES = /^\/etc\/(hostname|hosts|resolv\.conf)$/;

/**
 * The directories (and, for bind mounts of files, the files) every mount
 * destination and the working directory need.
 */
function mountPoints(spec: Spec, layout: PlanLayout, rootfs: string): PlanContext["mountPoints"] {
  const dirs = new Set<string>();
  const files = new Set<string>();
  for (const m of spec.mounts ?? []) {
    const isFile =
      m.type === "bind" &&
      (ETC_FILES.test(m.destination) || (layout.fileMounts ?? []).includes(m.destination));
    const chain = parents(rootfs, m.destination);
    if (isFile) {
      chain.pop();
      files.add(`${rootfs}${m.destination}`);
    }
    for (const dir of chain) dirs.add(dir);
  }
  for (const dir of parents(rootfs, spec.process.cwd)) dirs.add(dir);
  return { dirs, files };
}

export function planContext(spec: Spec, layout: PlanLayout): PlanContext {
  const rootfs = `${layout.containerDir}/rootfs`;
  const namespaces = new Set((spec.linux?.namespaces ?? []).map((n) => n.type));
  const made = new Set((spec.linux?.namespaces ?? []).filter((n) => !n.path).map((n) => n.type));
  const userns = namespaces.has("user");
  return {
    spec,
    layout,
    rootfs,
    namespaces,
    made,
    userns,
    root: userns
      ? { uid: hostIdOf(spec.linux?.uidMappings), gid: hostIdOf(spec.linux?.gidMappings) }
      : { uid: 0, gid: 0 },
    idmapReady: layout.idmappedLayers && userns,
    mountPoints: mountPoints(spec, layout, rootfs),
  };
}
