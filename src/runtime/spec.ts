/**
 * The OCI runtime spec ("config.json", runtime-spec 1.0.2) — the subset minibox
 * writes and executes — and the pure function that builds it from an image
 * config and the `run` flags. The defaults start from Docker's (moby
 * daemon/pkg/oci/defaults.go, oci/caps, the container env rules):
 * capabilities, masked and read-only paths, mounts, the device cgroup. Where
 * they differ on purpose — a user namespace, no_new_privs on, minibox's own
 * seccomp profile, a fixed RLIMIT_NOFILE — docs/security.md "minibox's
 * defaults against Docker's" says why, and test/unit/security-defaults.test.ts
 * checks that table against this file. The seccomp profile
 * (src/runtime/seccomp/) is resolved here for the container's bounding set
 * and the host's arch and kernel, as Docker resolves its default profile;
 * `--privileged` and `seccomp=unconfined` leave it out.
 *
 * generateSpec() reads no files, no clock and no randomness: the same settings
 * always give a deep-equal spec. Whatever depends on the host (the caller's
 * rlimits, the per-container /etc files) comes in through RunSettings.
 */
import { posix } from "node:path";
import { MiniboxError } from "../errors.js";
import type { ImageConfig } from "../image/manifest.js";
import type { CgroupLimits } from "./cgroups/common.js";
import { deviceRules, type SpecDevice, type SpecDeviceCgroup } from "./devices.js";
import { resolveProfile, type SeccompProfile, type SpecSeccomp } from "./seccomp/profile.js";
import { tmpfsSize } from "./tmpfs-size.js";
import { type Ulimit, withUlimits } from "./ulimits.js";
import type { ResolvedUser } from "./user.js";

export const OCI_VERSION = "1.0.2";

// ---------------------------------------------------------------------------
// Types (runtime-spec config.md / config-linux.md; only what minibox uses)

export interface Spec {
  ociVersion: string;
  process: SpecProcess;
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: SpecMount[];
  linux: SpecLinux;
  annotations: Record<string, string>;
}

export interface SpecProcess {
  terminal: boolean;
  user: { uid: number; gid: number; additionalGids: number[] };
  args: string[];
  env: string[];
  cwd: string;
  capabilities: SpecCapabilities;
  rlimits: SpecRlimit[];
  noNewPrivileges: boolean;
  /** /proc/PID/oom_score_adj of the init (written by the executor before the program runs). */
  oomScoreAdj?: number;
}

export interface SpecCapabilities {
  bounding: string[];
  effective: string[];
  permitted: string[];
  inheritable: string[];
  ambient: string[];
}

export interface SpecRlimit {
  type: string;
  soft: number;
  hard: number;
}

export interface SpecMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

export type NamespaceType = "pid" | "network" | "mount" | "ipc" | "uts" | "user" | "cgroup";

export interface SpecNamespace {
  type: NamespaceType;
  /** Join this existing namespace instead of creating one. */
  path?: string;
}

export interface SpecIdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface SpecResources {
  memory?: {
    limit?: number;
    swap?: number;
    reservation?: number;
    swappiness?: number;
    disableOOMKiller?: boolean;
  };
  cpu?: {
    shares?: number;
    quota?: number;
    period?: number;
    /** cpuset lists ("0-3,5"). */
    cpus?: string;
    mems?: string;
  };
  pids?: { limit: number };
  blockIO?: SpecBlockIO;
  /** Asked for only to be refused where the host has no hugetlb controller. */
  hugepageLimits?: Array<{ pageSize: string; limit: number }>;
  network?: { classID?: number; priorities?: Array<{ name: string; priority: number }> };
  /** The device cgroup's rules, in order (the last matching rule decides). */
  devices?: SpecDeviceCgroup[];
}

/** linux.resources.blockIO: a weight and per-device weights and throttles. */
export interface SpecBlockIO {
  weight?: number;
  leafWeight?: number;
  weightDevice?: Array<{ major: number; minor: number; weight?: number; leafWeight?: number }>;
  throttleReadBpsDevice?: SpecThrottle[];
  throttleWriteBpsDevice?: SpecThrottle[];
  throttleReadIOPSDevice?: SpecThrottle[];
  throttleWriteIOPSDevice?: SpecThrottle[];
}

export interface SpecThrottle {
  major: number;
  minor: number;
  rate: number;
}

export interface SpecLinux {
  namespaces: SpecNamespace[];
  uidMappings?: SpecIdMapping[];
  gidMappings?: SpecIdMapping[];
  resources: SpecResources;
  cgroupsPath: string;
  maskedPaths: string[];
  readonlyPaths: string[];
  /** The seccomp filter (absent: unconfined). */
  seccomp?: SpecSeccomp;
  /** --sysctl: written under the container's /proc/sys before it is made read-only. */
  sysctl?: Record<string, string>;
  /** The propagation of the container's "/" (shared, rslave, unbindable…): applied after pivot_root. */
  rootfsPropagation?: string;
  /**
   * Nodes made in the container's /dev: --device's, and with --privileged
   * the host's. uid/gid are the owner inside the container, as in the OCI
   * spec; absent, the node stays owned by the host's root (unmapped under a
   * user namespace, so only its "other" permission bits apply).
   */
  devices?: SpecDevice[];
}

// ---------------------------------------------------------------------------
// Docker's defaults

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Every capability Linux defines (capabilities(7)), in kernel number order. */
export const ALL_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN",
  "CAP_NET_RAW",
  "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",
  "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO",
  "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT",
  "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG",
  "CAP_MKNOD",
  "CAP_LEASE",
  "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP",
  "CAP_MAC_OVERRIDE",
  "CAP_MAC_ADMIN",
  "CAP_SYSLOG",
  "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND",
  "CAP_AUDIT_READ",
  "CAP_PERFMON",
  "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
];

/** The 14 capabilities Docker gives a container, in Docker's order. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

/**
 * Paths hidden from the container (moby's static list; Docker also masks each
 * CPU's thermal_throttle directory it finds on the host, which a pure function
 * cannot look for).
 */
export const DEFAULT_MASKED_PATHS: readonly string[] = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/interrupts",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/sys/devices/virtual/powercap",
  "/sys/firmware",
];

export const DEFAULT_READONLY_PATHS: readonly string[] = [
  "/proc/bus",
  "/proc/fs",
  "/proc/irq",
  "/proc/sys",
  "/proc/sysrq-trigger",
];

/**
 * Every container's RLIMIT_NOFILE, soft and hard (at most the caller's hard
 * limit): what Docker's containers inherited while moby's docker.service had
 * LimitNOFILE=infinity (until 2023). Fixed, so a container does not depend on
 * the shell that started minibox.
 */
export const DEFAULT_NOFILE = 1048576;

// ---------------------------------------------------------------------------
// Input

export interface RunSettings {
  /** 64-hex container id. */
  id: string;
  name: string;
  image: { id: string; ref: string; config: ImageConfig };
  /** Absolute path of the merged rootfs (root.path). */
  rootfs: string;
  /** Args after the image on the command line (replace Cmd when non-empty). */
  command: string[];
  /** --entrypoint: one argv element; "" clears the image's Entrypoint. Either drops the image's Cmd. */
  entrypoint?: string;
  /** -e / --env-file, already resolved "K=V" (a bare "K" unsets K, as in Docker). */
  env: string[];
  /** -w */
  workdir?: string;
  user: ResolvedUser;
  /** --hostname or the short id (12 hex). */
  hostname: string;
  tty: boolean;
  interactive: boolean;
  readOnly: boolean;
  /** Normalised "CAP_X" names, or "ALL". */
  capAdd: string[];
  capDrop: string[];
  limits: CgroupLimits;
  /** undefined = --userns=host (no user namespace). */
  idmap?: { containerID: 0; hostID: number; size: number };
  /** "host": no network namespace; the others: a new one. */
  network: "none" | "host" | "bridge";
  /** --init: recorded in the annotation "minibox.init"; the runtime prefixes the args. */
  init: boolean;
  labels: Record<string, string>;
  /** Host paths of the per-container files bind-mounted at /etc/hostname, /etc/hosts, /etc/resolv.conf. */
  hostFiles: { hostname: string; hosts: string; resolvConf: string };
  /** The caller's hard RLIMIT_NOFILE: rlimits never exceed it. */
  rlimitHard: { nofile: number };
  /**
   * Volumes and bind mounts (-v, --mount, the image's VOLUMEs), resolved to
   * host paths. `idmap`: mount them idmapped through the container's user
   * namespace, so host uid 0 is the container's root (see plan.ts).
   */
  volumes?: { source: string; destination: string; readOnly: boolean; idmap: boolean }[];
  /** --tmpfs and --mount type=tmpfs: mounted by the init, so owned by the container's root. */
  tmpfs?: { destination: string; options: string[] }[];
  /** --shm-size in bytes (absent: 64 MiB, Docker's default). */
  shmSize?: number;
  /**
   * The seccomp profile (--security-opt seccomp=FILE, else minibox's
   * default); absent or "unconfined": no filter. --privileged overrides it.
   * One already resolved for this container (the OCI form, as `run` gets it
   * from seccomp/cache.ts) comes out unchanged: resolving it is the identity.
   */
  seccomp?: SeccompProfile | "unconfined";
  /**
   * --security-opt seccomp=FILE named the profile: --privileged keeps it
   * (as Docker since 20.10); without it --privileged runs unfiltered.
   */
  seccompNamed?: boolean;
  /** What resolveProfile needs of the host: process.arch and os.release(). */
  host?: { arch: string; kernel: string };
  /** --privileged: every capability, no seccomp, no masked or read-only paths, /sys writable, hostDevices. */
  privileged?: boolean;
  /** The host's device nodes, for --privileged (read by the caller: this function reads no files). */
  hostDevices?: SpecDevice[];
  /**
   * minibox's own bounding set: --privileged without a user namespace gives
   * every capability in it (in a user namespace, every capability).
   */
  callerCapabilities?: readonly string[];
  /** --security-opt no-new-privileges=false turns it off (absent: on, minibox's default). */
  noNewPrivileges?: boolean;
  /** --ulimit, checked: each replaces the default of its resource. */
  ulimits?: Ulimit[];
  /** --group-add, resolved to gids: added to the user's supplementary groups. */
  groupAdd?: number[];
  /** --sysctl, checked against the container's namespaces (sysctls.ts). */
  sysctls?: Record<string, string>;
  /** --device: the host's nodes (devices.ts gatherDevices) with their cgroup permissions. */
  devices?: { node: SpecDevice; access: string }[];
}

// ---------------------------------------------------------------------------
// The generator

export function generateSpec(s: RunSettings): Spec {
  const image = s.image.config.config ?? {};
  const capabilities = specCapabilities(s);
  return {
    ociVersion: OCI_VERSION,
    process: {
      terminal: s.tty,
      user: {
        uid: s.user.uid,
        gid: s.user.gid,
        additionalGids: [...new Set([...s.user.additionalGids, ...(s.groupAdd ?? [])])],
      },
      args: processArgs(image.Entrypoint, image.Cmd, s.entrypoint, s.command),
      env: processEnv(image.Env ?? [], s),
      cwd: s.workdir ? workdirOption(s.workdir) : imageWorkdir(image.WorkingDir),
      capabilities,
      rlimits: withUlimits(
        [
          {
            type: "RLIMIT_NOFILE",
            soft: Math.min(DEFAULT_NOFILE, s.rlimitHard.nofile),
            hard: Math.min(DEFAULT_NOFILE, s.rlimitHard.nofile),
          },
        ],
        s.ulimits ?? [],
      ),
      noNewPrivileges: s.noNewPrivileges ?? true,
    },
    root: { path: s.rootfs, readonly: s.readOnly },
    hostname: s.hostname,
    mounts: mounts(s),
    linux: {
      namespaces: namespaces(s),
      ...(s.idmap
        ? {
            uidMappings: [{ ...s.idmap }],
            gidMappings: [{ ...s.idmap }],
          }
        : {}),
      resources: { ...resources(s.limits), devices: deviceCgroup(s) },
      cgroupsPath: `minibox/${s.id}`,
      ...protectedPaths(s),
      ...seccompOf(s, capabilities.bounding),
      ...limitsOfLinux(s),
    },
    annotations: {
      ...s.labels,
      "minibox.image": s.image.id,
      "minibox.image.ref": s.image.ref,
      "minibox.name": s.name,
      "minibox.init": String(s.init),
      // The image's STOPSIGNAL, for `stop` (SIGTERM when absent).
      ...(image.StopSignal ? { "minibox.stopsignal": image.StopSignal } : {}),
    },
  };
}

/** linux.sysctl and linux.devices, present only when asked for. */
function limitsOfLinux(s: RunSettings): Pick<SpecLinux, "sysctl" | "devices"> {
  const out: Pick<SpecLinux, "sysctl" | "devices"> = {};
  if (s.sysctls && Object.keys(s.sysctls).length > 0) out.sysctl = { ...s.sysctls };
  const devices = specDevices(s);
  if (devices.length > 0) out.devices = devices;
  return out;
}

/**
 * The nodes made in /dev. A --device node is owned inside the container by
 * its root under a user namespace (the user asked to use it), else by its
 * host owner. --privileged adds every other host node; under a user
 * namespace those keep no owner (they stay the host root's, unmapped, so
 * only their "other" bits apply — podman's rootless --privileged is alike).
 */
function specDevices(s: RunSettings): SpecDevice[] {
  const userns = s.idmap !== undefined;
  const added = (s.devices ?? []).map(({ node }) =>
    userns ? { ...node, uid: 0, gid: 0 } : { ...node },
  );
  if (!s.privileged) return added;
  const taken = new Set(added.map((d) => d.path));
  const host = (s.hostDevices ?? [])
    .filter((d) => !taken.has(d.path))
    .map(({ uid, gid, ...d }) => (userns ? d : { ...d, uid, gid }));
  return [...added, ...host];
}

/** linux.resources.devices: --privileged may use every device (Docker), others the default list and --device's. */
function deviceCgroup(s: RunSettings): SpecDeviceCgroup[] {
  return s.privileged ? [{ allow: true, access: "rwm" }] : deviceRules(s.devices ?? []);
}

/**
 * Docker's rule: --entrypoint (even "") replaces the image's Entrypoint *and*
 * drops its Cmd; otherwise command-line args replace Cmd.
 */
export function processArgs(
  imageEntrypoint: string[] | null | undefined,
  imageCmd: string[] | null | undefined,
  entrypointFlag: string | undefined,
  command: string[],
): string[] {
  let args: string[];
  if (entrypointFlag !== undefined) {
    args = [...(entrypointFlag === "" ? [] : [entrypointFlag]), ...command];
  } else {
    args = [...(imageEntrypoint ?? []), ...(command.length > 0 ? command : (imageCmd ?? []))];
  }
  if (args.length === 0) {
    throw new MiniboxError("no command specified", "give a command after the image name");
  }
  return args;
}

/**
 * Docker's container environment: PATH, HOSTNAME (and TERM with a tty) first,
 * then the image's Env, then -e/--env-file, each replacing an earlier entry of
 * the same name in place (one entry per name, first position kept) or
 * appending; HOME last, from the user's passwd entry, when nothing set it
 * (runc adds it the same way).
 */
function processEnv(imageEnv: string[], s: RunSettings): string[] {
  const env = new Map<string, string>();
  const apply = (entries: string[]) => {
    for (const entry of entries) {
      const eq = entry.indexOf("=");
      if (eq < 0) env.delete(entry);
      else if (eq > 0) env.set(entry.slice(0, eq), entry);
    }
  };
  apply([`PATH=${DEFAULT_PATH}`, `HOSTNAME=${s.hostname}`]);
  if (s.tty) apply(["TERM=xterm"]);
  apply(imageEnv);
  apply(s.env);
  if (!env.has("HOME")) env.set("HOME", `HOME=${s.user.home}`);
  return [...env.values()];
}

/**
 * --privileged: every capability (Docker); without a user namespace, every
 * one minibox holds itself, since no process can be given more.
 */
export function privilegedCapabilities(
  userns: boolean,
  callerCapabilities: readonly string[] | undefined,
  uid: number,
): SpecCapabilities {
  const held = userns ? undefined : callerCapabilities;
  const missing = held ? ALL_CAPABILITIES.filter((c) => !held.includes(c)) : [];
  return capabilitySets(["ALL"], missing, uid);
}

/** The container's capability sets: --privileged's, or Docker's defaults with --cap-add/--cap-drop. */
export function specCapabilities(
  s: Pick<
    RunSettings,
    "privileged" | "idmap" | "callerCapabilities" | "user" | "capAdd" | "capDrop"
  >,
): SpecCapabilities {
  return s.privileged
    ? privilegedCapabilities(s.idmap !== undefined, s.callerCapabilities, s.user.uid)
    : capabilitySets(s.capAdd, s.capDrop, s.user.uid);
}

/** Docker's masked and read-only paths; none with --privileged (Docker). */
function protectedPaths(s: RunSettings): Pick<SpecLinux, "maskedPaths" | "readonlyPaths"> {
  if (s.privileged) return { maskedPaths: [], readonlyPaths: [] };
  return { maskedPaths: [...DEFAULT_MASKED_PATHS], readonlyPaths: [...DEFAULT_READONLY_PATHS] };
}

/**
 * linux.seccomp: the profile resolved for the container's bounding set (the
 * rules that depend on a capability follow it, as Docker's do) and for the
 * host's arch and kernel. None when unconfined, or --privileged without a
 * named profile (Docker).
 */
function seccompOf(s: RunSettings, bounding: readonly string[]): Pick<SpecLinux, "seccomp"> {
  if (s.seccomp === undefined || s.seccomp === "unconfined") return {};
  if (s.privileged && !s.seccompNamed) return {};
  if (!s.host) throw new Error("generateSpec: a seccomp profile needs RunSettings.host");
  return {
    seccomp: resolveProfile(s.seccomp, {
      arch: s.host.arch,
      capabilities: bounding,
      kernel: s.host.kernel,
    }),
  };
}

/**
 * Docker's TweakCapabilities: --cap-add ALL gives every capability except the
 * dropped ones; --cap-drop ALL keeps only the added ones; otherwise the
 * defaults minus the dropped, plus the added. A user other than root gets the
 * bounding set only (empty effective/permitted), as in Docker 20.10+.
 */
export function capabilitySets(capAdd: string[], capDrop: string[], uid: number): SpecCapabilities {
  for (const c of [...capAdd, ...capDrop]) {
    if (c !== "ALL" && !ALL_CAPABILITIES.includes(c)) {
      throw new MiniboxError(`unknown capability: ${JSON.stringify(c)}`);
    }
  }
  let caps: string[];
  if (capAdd.includes("ALL")) {
    caps = ALL_CAPABILITIES.filter((c) => !capDrop.includes(c));
  } else if (capDrop.includes("ALL")) {
    caps = [...capAdd];
  } else {
    caps = [...DEFAULT_CAPABILITIES.filter((c) => !capDrop.includes(c)), ...capAdd];
  }
  const set = [...new Set(caps)];
  return {
    bounding: set,
    effective: uid === 0 ? [...set] : [],
    permitted: uid === 0 ? [...set] : [],
    inheritable: [],
    ambient: [],
  };
}

/**
 * /sys, read-only. In a user namespace that does not own its network
 * namespace the kernel refuses a new sysfs (EPERM); runc then binds the
 * host's /sys read-only (`bindType`: "bind", or "none" as `runc spec` writes).
 */
export function sysMount(bindHost: boolean, bindType = "bind"): SpecMount {
  return bindHost
    ? {
        destination: "/sys",
        type: bindType,
        source: "/sys",
        options: ["rbind", "nosuid", "noexec", "nodev", "ro"],
      }
    : {
        destination: "/sys",
        type: "sysfs",
        source: "sysfs",
        options: ["nosuid", "noexec", "nodev", "ro"],
      };
}

function mounts(s: RunSettings): SpecMount[] {
  const sys = sysMount(s.idmap !== undefined && s.network === "host");
  // --privileged: /sys writable (Docker), where the kernel lets the namespace's root write.
  if (s.privileged) sys.options = sys.options.filter((o) => o !== "ro");
  const bind = (destination: string, source: string): SpecMount => ({
    destination,
    type: "bind",
    source,
    options: s.readOnly ? ["rbind", "rprivate", "ro"] : ["rbind", "rprivate"],
  });
  return [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    {
      destination: "/dev",
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
      destination: "/dev/pts",
      type: "devpts",
      source: "devpts",
      options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    sys,
    {
      destination: "/dev/mqueue",
      type: "mqueue",
      source: "mqueue",
      options: ["nosuid", "noexec", "nodev"],
    },
    {
      destination: "/dev/shm",
      type: "tmpfs",
      source: "shm",
      options: [
        "nosuid",
        "noexec",
        "nodev",
        "mode=1777",
        s.shmSize === undefined ? "size=65536k" : `size=${tmpfsSize(s.shmSize)}`,
      ],
    },
    bind("/etc/hostname", s.hostFiles.hostname),
    bind("/etc/hosts", s.hostFiles.hosts),
    bind("/etc/resolv.conf", s.hostFiles.resolvConf),
    ...userMounts(s),
  ];
}

/**
 * Volumes and binds in their order, and the tmpfs mounts: each before the
 * first mount inside it (a tmpfs on /run must not hide a volume on
 * /run/secrets), else at the end.
 */
function userMounts(s: RunSettings): SpecMount[] {
  const out = (s.volumes ?? []).map(volumeMount);
  for (const t of s.tmpfs ?? []) {
    const m: SpecMount = {
      destination: t.destination,
      type: "tmpfs",
      source: "tmpfs",
      options: t.options,
    };
    const at = out.findIndex((o) => o.destination.startsWith(`${t.destination}/`));
    out.splice(at < 0 ? out.length : at, 0, m);
  }
  return out;
}

/**
 * A volume or bind mount as runc/crun take it: "rbind" (submounts too) and
 * "ro"/"rw"; an idmapped one carries "idmap" (runtime-spec 1.1) and is a
 * plain "bind": an idmapped tree is cloned without its submounts, because
 * most of those (proc, sysfs…) cannot be idmapped.
 */
function volumeMount(v: NonNullable<RunSettings["volumes"]>[number]): SpecMount {
  return {
    destination: v.destination,
    type: "bind",
    source: v.source,
    options: [
      v.idmap ? "bind" : "rbind",
      "rprivate",
      v.readOnly ? "ro" : "rw",
      ...(v.idmap ? ["idmap"] : []),
    ],
  };
}

function namespaces(s: RunSettings): SpecNamespace[] {
  const list: SpecNamespace[] = [
    { type: "pid" },
    { type: "ipc" },
    { type: "uts" },
    { type: "mount" },
    { type: "cgroup" },
  ];
  if (s.idmap) list.push({ type: "user" });
  if (s.network !== "host") list.push({ type: "network" });
  return list;
}

const MIN_MEMORY = 6 * 1024 * 1024;

/** Flags → linux.resources, with Docker's validation of the values. */
export function resources(limits: RunSettings["limits"]): SpecResources {
  const { memory, memorySwap, cpuQuota, cpuPeriod, cpuShares, pidsLimit } = limits;
  const out: SpecResources = {};
  if (memory !== undefined && memory !== 0) {
    if (memory < MIN_MEMORY) {
      throw new MiniboxError("minimum memory limit allowed is 6MB", "use --memory 6m or more");
    }
  }
  if (memorySwap !== undefined && memorySwap !== 0) {
    if (!memory) {
      throw new MiniboxError(
        "you should always set the memory limit when using the memory-swap limit",
        "add --memory",
      );
    }
    if (memorySwap !== -1 && memorySwap < memory) {
      throw new MiniboxError(
        "minimum memory-swap limit should be larger than the memory limit",
        "use a --memory-swap at least as large as --memory, or -1 for unlimited swap",
      );
    }
  }
  if (memory) {
    out.memory = { limit: memory };
    if (memorySwap) out.memory.swap = memorySwap;
  }
  if (cpuPeriod !== undefined && cpuPeriod !== 0 && (cpuPeriod < 1000 || cpuPeriod > 1000000)) {
    throw new MiniboxError(
      "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
    );
  }
  if (cpuQuota !== undefined && cpuQuota !== 0 && cpuQuota < 1000) {
    throw new MiniboxError("CPU cfs quota can not be less than 1ms (i.e. 1000)");
  }
  if (cpuShares !== undefined && cpuShares < 0) {
    throw new MiniboxError("CPU shares must be a positive number");
  }
  const cpu: NonNullable<SpecResources["cpu"]> = {};
  if (cpuShares) cpu.shares = cpuShares;
  if (cpuQuota) cpu.quota = cpuQuota;
  if (cpuPeriod) cpu.period = cpuPeriod;
  if (Object.keys(cpu).length > 0) out.cpu = cpu;
  // Docker: 0 or a negative value means "no limit", written as -1.
  if (pidsLimit !== undefined) out.pids = { limit: pidsLimit > 0 ? pidsLimit : -1 };
  return out;
}

/** Image labels overlaid with --label / --label-file ones (the flags win). */
export function mergeLabels(
  image: Record<string, string> | null | undefined,
  flags: Record<string, string>,
): Record<string, string> {
  return { ...(image ?? {}), ...flags };
}

/**
 * `-w DIR` of run and exec: absolute, as Docker requires (a relative one
 * would be taken from wherever the executor happens to be).
 */
export function workdirOption(dir: string): string {
  if (dir.startsWith("/")) return dir;
  throw new MiniboxError(
    `the working directory ${JSON.stringify(dir)} is invalid, it needs to be an absolute path`,
    `use -w /${dir.replace(/^(\.\.?\/)+/, "")}`,
  );
}

/**
 * The image's WorkingDir as an absolute path inside the container: an
 * image may say "app" or "../../" (Docker's builder always writes absolute
 * ones); relative ones are taken from /, and ".." stops there, as the
 * kernel does at the container's root.
 */
export function imageWorkdir(dir: string | undefined): string {
  if (!dir) return "/";
  return dir.startsWith("/") ? dir : posix.resolve("/", dir);
}
