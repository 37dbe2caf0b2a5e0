/**
 * Which cgroup version to drive, decided by looking at the machine:
 * statfs(2) magic of the cgroupfs root, /proc/self/mountinfo for where each
 * v1 controller is mounted, and cgroup.controllers for what cgroup2 offers.
 */
import { readFileSync, statfsSync } from "node:fs";
import path from "node:path";
import { MiniboxError } from "../../errors.js";
import { DEFAULT_FS_ROOT, readCgroupFile } from "./common.js";

export const CGROUP2_SUPER_MAGIC = 0x63677270;
export const CGROUP_SUPER_MAGIC = 0x27e0eb;

/** The controllers minibox uses on v1; freezer and blkio are left alone. */
export const V1_CONTROLLERS = ["cpuset", "cpu", "cpuacct", "memory", "pids", "devices"] as const;
/** v1's freezer: a directory there only for containers that can be paused (CgroupOptions.freezer). */
export const V1_FREEZER = "freezer";
/** v1's blkio: a directory there only for limits that need it (CgroupOptions.blkio). */
export const V1_BLKIO = "blkio";
/** The controllers minibox enables on v2, in the order written to subtree_control. */
export const V2_CONTROLLERS = ["cpu", "memory", "pids", "cpuset"] as const;
/** A hybrid host's cgroup2 mount is used only when it has all of these. */
const V2_REQUIRED = ["cpu", "memory", "pids"];

export interface MountEntry {
  /** Root of the mount within its filesystem (field 4), e.g. "/" or "/docker/abc". */
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) =>
    String.fromCharCode(Number.parseInt(oct, 8)),
  );
}

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const fields = line.split(" ");
    const sep = fields.indexOf("-", 6);
    if (sep < 0 || fields.length < sep + 4) continue;
    out.push({
      root: unescapeOctal(fields[3] as string),
      mountPoint: unescapeOctal(fields[4] as string),
      fsType: fields[sep + 1] as string,
      superOptions: (fields[sep + 3] as string).split(","),
    });
  }
  return out;
}

/**
 * /proc/self/cgroup → controller → path. v1 lines "4:memory:/a/b" give one
 * entry per controller (and "name=systemd"); the v2 line "0::/x" gives "".
 */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    const controllers = m[1] as string;
    const cgPath = m[2] as string;
    if (controllers === "") out.set("", cgPath);
    for (const c of controllers.split(",")) if (c !== "") out.set(c, cgPath);
  }
  return out;
}

/*
 * What this process learns about the machine's cgroups once, not once per
 * container: the mounts (/proc/self/mountinfo), its own cgroup and the
 * version. `stats` of 100 containers read mountinfo 200 times and
 * /proc/self/cgroup 100 times (~25 ms of its run); cgroup hierarchies are
 * not mounted or moved under a running command.
 */
let selfMountinfo: string | undefined;
let ownCgroupsMemo: Map<string, string> | undefined;
const versionMemo = new Map<string, 1 | 2>();

function mountinfoText(): string {
  selfMountinfo ??= readFileSync("/proc/self/mountinfo", "utf8");
  return selfMountinfo;
}

export function ownCgroups(): Map<string, string> {
  ownCgroupsMemo ??= parseProcCgroup(readFileSync("/proc/self/cgroup", "utf8"));
  return ownCgroupsMemo;
}

function fsType(dir: string): number | undefined {
  try {
    return statfsSync(dir).type;
  } catch {
    return undefined;
  }
}

function isUnder(dir: string, root: string): boolean {
  return dir === root || dir.startsWith(root.endsWith("/") ? root : `${root}/`);
}

export interface V1Mount {
  mountPoint: string;
  /** Root of the mount within the hierarchy ("/" unless bind-mounted from a sub-cgroup). */
  root: string;
  /** Every controller of this hierarchy (cpu and cpuacct may share one). */
  controllers: string[];
}

/** Where each v1 controller minibox uses is mounted; prefers mounts under fsRoot. */
export function findV1Mounts(
  fsRoot: string = DEFAULT_FS_ROOT,
  mountinfo: string = mountinfoText(),
): Map<string, V1Mount> {
  const out = new Map<string, V1Mount>();
  const entries = parseMountinfo(mountinfo).filter((e) => e.fsType === "cgroup");
  // Mounts under fsRoot first, then any other; the first one seen wins.
  const ordered = [
    ...entries.filter((e) => isUnder(e.mountPoint, fsRoot)),
    ...entries.filter((e) => !isUnder(e.mountPoint, fsRoot)),
  ];
  for (const e of ordered) {
    const controllers = e.superOptions.filter(
      (o) =>
        (V1_CONTROLLERS as readonly string[]).includes(o) || o === V1_FREEZER || o === V1_BLKIO,
    );
    for (const c of controllers) {
      if (!out.has(c)) out.set(c, { mountPoint: e.mountPoint, root: e.root, controllers });
    }
  }
  return out;
}

/**
 * Every controller some v1 hierarchy has mounted (hugetlb, net_cls… too):
 * what a spec may ask of this host.
 */
export function mountedV1Controllers(mountinfo: string = mountinfoText()): Set<string> {
  const out = new Set<string>();
  for (const e of parseMountinfo(mountinfo)) {
    if (e.fsType === "cgroup") for (const o of e.superOptions) out.add(o);
  }
  return out;
}

/** Controllers a cgroup2 directory offers (its cgroup.controllers). */
export function v2Controllers(dir: string): string[] {
  return (readCgroupFile(path.join(dir, "cgroup.controllers")) ?? "").split(/\s+/).filter(Boolean);
}

/**
 * The cgroup2 mount to drive: fsRoot itself when it is cgroup2 (pure v2), or
 * fsRoot/unified on a hybrid host when that mount has the controllers minibox
 * needs (it usually has none). undefined when v2 is not usable.
 */
export function findV2Root(fsRoot: string = DEFAULT_FS_ROOT): string | undefined {
  if (fsType(fsRoot) === CGROUP2_SUPER_MAGIC) return fsRoot;
  const unified = path.join(fsRoot, "unified");
  if (fsType(unified) === CGROUP2_SUPER_MAGIC) {
    const have = v2Controllers(unified);
    if (V2_REQUIRED.every((c) => have.includes(c))) return unified;
  }
  return undefined;
}

/** 2 when cgroup2 is usable (see findV2Root), 1 when v1 hierarchies are mounted. */
export function detectCgroupVersion(fsRoot: string = DEFAULT_FS_ROOT): 1 | 2 {
  let version = versionMemo.get(fsRoot);
  if (version === undefined) {
    version = detectVersion(fsRoot);
    versionMemo.set(fsRoot, version);
  }
  return version;
}

function detectVersion(fsRoot: string): 1 | 2 {
  if (fsType(fsRoot) === undefined) {
    throw new MiniboxError(
      `no cgroup filesystem at ${fsRoot}`,
      "minibox needs cgroupfs mounted (cgroup2 at /sys/fs/cgroup, or the v1 hierarchies under it)",
    );
  }
  if (findV2Root(fsRoot) !== undefined) return 2;
  if (findV1Mounts(fsRoot).size > 0) return 1;
  throw new MiniboxError(
    `no usable cgroup hierarchy under ${fsRoot}`,
    "mount cgroup2 with the cpu, memory and pids controllers, or the v1 cpu, cpuacct, memory and pids hierarchies",
  );
}
