/**
 * The starter config.json that `minibox-runc spec` writes: runc's own
 * (libcontainer/specconv.Example), field for field, so a bundle made for runc
 * and one made for minibox-runc are the same file. A pure function: the
 * caller supplies the ids a rootless spec maps to.
 */
import { DEFAULT_PATH, DEFAULT_READONLY_PATHS, OCI_VERSION, sysMount } from "../spec.js";

export interface StarterSpecOptions {
  /** `spec --rootless`: a user namespace mapping root to the caller (runc's ToRootless). */
  rootless?: { uid: number; gid: number };
}

/** runc's starter capabilities: what a shell needs, nothing an escape could use. */
const STARTER_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/** runc's masked paths (a shorter list than Docker's DEFAULT_MASKED_PATHS, in runc's order). */
const STARTER_MASKED_PATHS = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/sys/firmware",
  "/proc/scsi",
];

type Json = Record<string, unknown>;

function starterMounts(rootless: boolean): Json[] {
  // devpts' gid=5 (tty) does not exist in a user namespace that maps one id;
  // sysfs cannot be mounted without owning the network namespace, so a
  // rootless container bind-mounts the host's /sys instead (as runc does).
  const devptsOptions = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"];
  if (!rootless) devptsOptions.push("gid=5");
  const sys = sysMount(rootless, "none");
  return [
    { destination: "/proc", type: "proc", source: "proc" },
    {
      destination: "/dev",
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    { destination: "/dev/pts", type: "devpts", source: "devpts", options: devptsOptions },
    {
      destination: "/dev/shm",
      type: "tmpfs",
      source: "shm",
      options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    },
    {
      destination: "/dev/mqueue",
      type: "mqueue",
      source: "mqueue",
      options: ["nosuid", "noexec", "nodev"],
    },
    { ...sys },
    {
      destination: "/sys/fs/cgroup",
      type: "cgroup",
      source: "cgroup",
      options: ["nosuid", "noexec", "nodev", "relatime", "ro"],
    },
  ];
}

function starterLinux(rootless: StarterSpecOptions["rootless"]): Json {
  const tail = {
    maskedPaths: [...STARTER_MASKED_PATHS],
    readonlyPaths: [...DEFAULT_READONLY_PATHS],
  };
  if (!rootless) {
    return {
      // Deny every device; the runtime adds the default ones it creates.
      resources: { devices: [{ allow: false, access: "rwm" }] },
      namespaces: ["pid", "network", "ipc", "uts", "mount"].map((type) => ({ type })),
      ...tail,
    };
  }
  // Rootless: no device cgroup (it needs privilege), no new network namespace
  // (there would be no way to connect it), and a user namespace.
  return {
    uidMappings: [{ containerID: 0, hostID: rootless.uid, size: 1 }],
    gidMappings: [{ containerID: 0, hostID: rootless.gid, size: 1 }],
    namespaces: ["pid", "ipc", "uts", "mount", "user"].map((type) => ({ type })),
    ...tail,
  };
}

/** The config.json `spec` writes (as a plain object, key order as runc's). */
export function starterSpec(options: StarterSpecOptions = {}): Json {
  return {
    ociVersion: OCI_VERSION,
    process: {
      terminal: true,
      user: { uid: 0, gid: 0 },
      args: ["sh"],
      env: [`PATH=${DEFAULT_PATH}`, "TERM=xterm"],
      cwd: "/",
      capabilities: {
        bounding: [...STARTER_CAPS],
        effective: [...STARTER_CAPS],
        permitted: [...STARTER_CAPS],
        ambient: [...STARTER_CAPS],
      },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: true },
    hostname: "minibox",
    mounts: starterMounts(options.rootless !== undefined),
    linux: starterLinux(options.rootless),
  };
}
