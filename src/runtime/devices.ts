/**
 * Devices: `--device HOST[:CONTAINER][:PERMS]` (docker/cli's parser, moby's
 * DevicesFromPath for what the host has), and the device cgroup rules a
 * container gets: everything denied, then runc's default allow list (the
 * same for Docker's containers), then each --device with its permissions.
 * Everything but gatherDevices (which looks at the host's nodes) is pure.
 */
import { lstatSync, readdirSync, realpathSync, type Stats, statSync } from "node:fs";
import path from "node:path";
import { MiniboxError } from "../errors.js";
import { major, minor } from "../sys/devnum.js";

/** HostConfig.Devices entry, as Docker shows it. */
export interface DeviceMapping {
  PathOnHost: string;
  PathInContainer: string;
  /** A subset of "rwm", each letter once. */
  CgroupPermissions: string;
}

/** OCI linux.devices: a node the runtime makes in the container. */
export interface SpecDevice {
  path: string;
  /** Character, block, or "p" a FIFO (no numbers, no device cgroup rule). */
  type: "c" | "b" | "p";
  major: number;
  minor: number;
  fileMode: number;
  /** The owner inside the container; absent: left as made (the host's root). */
  uid?: number;
  gid?: number;
}

/** OCI linux.resources.devices: one device cgroup rule (absent type/major/minor = any). */
export interface SpecDeviceCgroup {
  allow: boolean;
  type?: "a" | "c" | "b";
  major?: number;
  minor?: number;
  access: string;
}

/** "rwm", "r", "mw"…: each letter at most once, at least one. */
export function validDeviceMode(mode: string): boolean {
  return /^[rwm]{1,3}$/.test(mode) && new Set(mode).size === mode.length;
}

/** docker/cli parseLinuxDevice and validateLinuxPath: "HOST", "HOST:CONTAINER", "HOST:PERMS", "HOST:CONTAINER:PERMS". */
export function parseDeviceFlag(flag: string): DeviceMapping {
  const bad = (why: string) =>
    new MiniboxError(
      `invalid argument "${flag}" for "--device" flag: ${why}`,
      "use HOST[:CONTAINER][:PERMS], PERMS made of r, w and m",
    );
  const parts = flag.split(":");
  if (parts.length > 3 || parts[0] === "") throw bad(`bad format for path: ${flag}`);
  const [host = "", second, third] = parts;
  let target = host;
  let perms = "rwm";
  if (third !== undefined) {
    if (!validDeviceMode(third)) throw bad(`bad mode specified: ${third}`);
    target = second ?? "";
    perms = third;
  } else if (second !== undefined) {
    if (validDeviceMode(second)) perms = second;
    else target = second;
  }
  if (!path.posix.isAbsolute(target)) throw bad(`${target} is not an absolute path`);
  return {
    PathOnHost: host,
    PathInContainer: path.posix.normalize(target),
    CgroupPermissions: perms,
  };
}

/**
 * The node is made in the container's fresh /dev tmpfs by real root before
 * the container starts: anywhere else it would be made through the image's
 * own directories, where a symlink could send it to the host.
 */
export function checkContainerPath(m: DeviceMapping): void {
  if (!m.PathInContainer.startsWith("/dev/") || m.PathInContainer.split("/").includes("..")) {
    throw new MiniboxError(
      `--device ${m.PathOnHost}: the path in the container, ${m.PathInContainer}, is not under /dev`,
      "give a path under /dev, e.g. --device /dev/fuse:/dev/fuse",
    );
  }
}

function nodeOf(stat: Stats, containerPath: string): SpecDevice | undefined {
  const type = stat.isCharacterDevice() ? "c" : stat.isBlockDevice() ? "b" : undefined;
  if (type === undefined) return undefined;
  return {
    path: containerPath,
    type,
    major: major(stat.rdev),
    minor: minor(stat.rdev),
    fileMode: stat.mode & 0o7777,
    uid: stat.uid,
    gid: stat.gid,
  };
}

/**
 * Every device node under `dir` (not following symlinks), its path moved
 * under `target`; subdirectories named in `skip` are left out.
 */
export function devicesUnder(
  dir: string,
  target: string,
  skip: ReadonlySet<string> = new Set(),
): SpecDevice[] {
  const out: SpecDevice[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const host = path.join(dir, entry.name);
    const inside = path.posix.join(target, entry.name);
    if (entry.isDirectory()) {
      if (!skip.has(entry.name)) out.push(...devicesUnder(host, inside, skip));
    } else if (entry.isCharacterDevice() || entry.isBlockDevice()) {
      const node = nodeOf(lstatSync(host), inside);
      if (node) out.push(node);
    }
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : 1));
}

/**
 * The host's node(s) for one --device (moby's DevicesFromPath): a symlink is
 * followed once, a device node gives itself, a directory every device below
 * it; anything else is Docker's error.
 */
export function gatherDevices(m: DeviceMapping): SpecDevice[] {
  let host = m.PathOnHost;
  const fail = (why: string) =>
    new MiniboxError(
      `error gathering device information while adding custom device "${m.PathOnHost}": ${why}`,
      "give the path of a device node on this host, or a directory of them",
    );
  let stat: Stats;
  try {
    if (lstatSync(host).isSymbolicLink()) host = realpathSync(host);
    stat = statSync(host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw fail(code === "ENOENT" ? "no such file or directory" : String(code));
  }
  const node = nodeOf(stat, m.PathInContainer);
  if (node) return [node];
  const found = stat.isDirectory() ? devicesUnder(host, m.PathInContainer) : [];
  if (found.length === 0) throw fail("not a device node");
  return found;
}

/**
 * runc's AllowedDevices (libcontainer/specconv), which it adds to every
 * container Docker runs, plus /dev/console (5:1) from moby's default spec:
 * mknod of any node, the standard character devices, ptys, /dev/net/tun.
 */
export const DEFAULT_DEVICE_RULES: readonly SpecDeviceCgroup[] = [
  { allow: true, type: "c", access: "m" },
  { allow: true, type: "b", access: "m" },
  { allow: true, type: "c", major: 1, minor: 3, access: "rwm" },
  { allow: true, type: "c", major: 1, minor: 8, access: "rwm" },
  { allow: true, type: "c", major: 1, minor: 7, access: "rwm" },
  { allow: true, type: "c", major: 5, minor: 0, access: "rwm" },
  { allow: true, type: "c", major: 1, minor: 5, access: "rwm" },
  { allow: true, type: "c", major: 1, minor: 9, access: "rwm" },
  { allow: true, type: "c", major: 136, access: "rwm" },
  { allow: true, type: "c", major: 5, minor: 2, access: "rwm" },
  { allow: true, type: "c", major: 5, minor: 1, access: "rwm" },
  { allow: true, type: "c", major: 10, minor: 200, access: "rwm" },
];

/** linux.resources.devices: deny everything, allow the defaults, then each --device node with its permissions. */
export function deviceRules(
  devices: readonly { node: SpecDevice; access: string }[],
): SpecDeviceCgroup[] {
  return [
    { allow: false, access: "rwm" },
    ...DEFAULT_DEVICE_RULES.map((r) => ({ ...r })),
    ...devices.flatMap(({ node, access }) =>
      // A FIFO is no device: the device cgroup does not govern it.
      node.type === "p"
        ? []
        : [{ allow: true, type: node.type, major: node.major, minor: node.minor, access }],
    ),
  ];
}

/** A rule as cgroup v1's devices.allow/devices.deny take it: "c 1:3 rwm", "a *:* rwm". */
export function v1DeviceRule(r: SpecDeviceCgroup): string {
  const n = (x: number | undefined) => (x === undefined ? "*" : String(x));
  return `${r.type ?? "a"} ${n(r.major)}:${n(r.minor)} ${r.access}`;
}
