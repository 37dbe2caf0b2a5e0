/**
 * tmpfs mounts: `run --tmpfs /path[:opts]`, `--mount type=tmpfs,…` and
 * `--shm-size`, with Docker's rules (moby daemon/oci_linux.go, pkg/mount
 * MergeTmpfsOptions, ConvertTmpfsOptions). Pure text; the init mounts them
 * in its own namespaces (plan/child-mount-steps.ts), so in a user namespace
 * each tmpfs belongs to the container's root.
 */
import { posix } from "node:path";
import { MiniboxError } from "../errors.js";
import { parseBytes } from "./cgroups/index.js";
import { tmpfsSize } from "./tmpfs-size.js";

/** What every tmpfs gets unless its options say otherwise (Docker's defaults; size: the kernel's, half of RAM). */
const DEFAULT_OPTIONS = ["noexec", "nosuid", "nodev"];

/** Flags with an opposite: the last one given wins. The "on" side is mount(2)'s default, so it is dropped. */
const OPPOSITES: Record<string, string> = {
  exec: "noexec",
  suid: "nosuid",
  dev: "nodev",
  rw: "ro",
  atime: "noatime",
  diratime: "nodiratime",
};
const FLAGS = new Set([
  ...Object.keys(OPPOSITES),
  ...Object.values(OPPOSITES),
  "strictatime",
  "relatime",
]);
/** tmpfs's own key=value options (see tmpfs(5)). */
const KEYS = new Set(["size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "huge", "mpol"]);
/** Byte counts as tmpfs takes them: a number with k, m, g (…) or a percentage of RAM. */
const SIZE = /^\d+[kmgtpe%]?$/i;

/** The mount options of a tmpfs: Docker's defaults merged with the given ones (the last of a pair wins). */
export function tmpfsMountOptions(given: string, flag: string): string[] {
  const bad = (why: string) =>
    new MiniboxError(
      `invalid ${flag} option ${JSON.stringify(given)}: ${why}`,
      "use options such as rw,exec,size=64m,mode=1777",
    );
  const flags = new Map<string, string>(); // a flag and its opposite share one key
  const data = new Map<string, string>();
  for (const option of [...DEFAULT_OPTIONS, ...given.split(",").filter(Boolean)]) {
    const eq = option.indexOf("=");
    if (eq < 0) {
      if (!FLAGS.has(option)) throw bad(`unknown option '${option}'`);
      const positive = Object.entries(OPPOSITES).find(
        ([on, off]) => option === on || option === off,
      );
      flags.set(positive ? positive[0] : option, option);
      continue;
    }
    const key = option.slice(0, eq);
    const value = option.slice(eq + 1);
    if (!KEYS.has(key)) throw bad(`unknown option '${key}'`);
    if ((key === "size" || key === "nr_inodes" || key === "nr_blocks") && !SIZE.test(value))
      throw bad(`invalid ${key} '${value}'`);
    if (key === "mode" && !/^[0-7]{1,4}$/.test(value)) throw bad(`invalid mode '${value}'`);
    if ((key === "uid" || key === "gid") && !/^\d+$/.test(value))
      throw bad(`invalid ${key} '${value}'`);
    data.set(key, value);
  }
  const kept = [...flags.values()].filter((f) => !(f in OPPOSITES));
  return [...kept, ...[...data].map(([k, v]) => `${k}=${v}`)];
}

export interface TmpfsFlag {
  target: string;
  /** As given after the colon (HostConfig.Tmpfs's value). */
  given: string;
  options: string[];
}

/** One `--tmpfs /path[:options]`. */
export function parseTmpfsFlag(text: string): TmpfsFlag {
  const colon = text.indexOf(":");
  const path = colon < 0 ? text : text.slice(0, colon);
  const given = colon < 0 ? "" : text.slice(colon + 1);
  return { target: tmpfsTarget(path), given, options: tmpfsMountOptions(given, "--tmpfs") };
}

/** A tmpfs destination: absolute, not "/" (moby ValidateTmpfsMountDestination). */
export function tmpfsTarget(path: string): string {
  if (!path.startsWith("/")) {
    throw new MiniboxError(
      `invalid mount config for type "tmpfs": invalid mount path: '${path}' mount path must be absolute`,
      "give an absolute path inside the container, e.g. --tmpfs /scratch",
    );
  }
  const normal = posix.normalize(path).replace(/(.)\/$/, "$1");
  if (normal === "/") {
    throw new MiniboxError(`invalid mount config for type "tmpfs": destination can't be '/'`);
  }
  return normal;
}

/** `--mount type=tmpfs`'s tmpfs-size (bytes, with Docker's units) and tmpfs-mode (octal). */
export function mountTmpfsOptions(
  size: string | undefined,
  mode: string | undefined,
  readOnly: boolean,
  bad: (why: string) => MiniboxError,
): string[] {
  const given: string[] = [];
  if (readOnly) given.push("ro");
  if (mode !== undefined) {
    if (!/^[0-7]{1,4}$/.test(mode)) throw bad(`invalid value for tmpfs-mode: ${mode}`);
    given.push(`mode=${Number.parseInt(mode, 8).toString(8)}`);
  }
  if (size !== undefined) {
    let bytes: number;
    try {
      bytes = parseBytes(size, "tmpfs-size");
    } catch {
      throw bad(`invalid value for tmpfs-size: ${size}`);
    }
    if (bytes > 0) given.push(`size=${tmpfsSize(bytes)}`);
  }
  return tmpfsMountOptions(given.join(","), "--mount");
}

/** `--shm-size`: bytes with Docker's units (64m, 1g); more than 0. */
export function parseShmSize(text: string): number {
  const bytes = parseBytes(text, "--shm-size");
  if (bytes <= 0) throw new MiniboxError(`invalid --shm-size value "${text}": must be more than 0`);
  return bytes;
}
