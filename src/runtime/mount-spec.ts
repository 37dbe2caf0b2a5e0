/**
 * `run -v` and `run --mount` values → what to mount where. Pure text, with
 * Docker's rules and messages (docker/cli opts/mount.go, moby
 * volume/mounts/linux_parser.go); nothing is created or looked up here.
 *
 *   -v /host/dir:/ctr/path[:ro|:rw]   bind mount (the host dir is created if missing)
 *   -v NAME:/ctr/path[:ro]            named volume (created on first use)
 *   -v /ctr/path                      anonymous volume
 *   --mount type=bind,source=/h,target=/c[,readonly]      (source must exist)
 *   --mount type=volume[,source=NAME],target=/c[,readonly][,volume-nocopy]
 *   --mount type=tmpfs,target=/c[,tmpfs-size=64m][,tmpfs-mode=1770]   (tmpfs-spec.ts)
 *   --tmpfs /c[:options]              a tmpfs too, but not in inspect's Mounts (as Docker)
 */
import { posix } from "node:path";
import { MiniboxError } from "../errors.js";
import { mountTmpfsOptions, parseTmpfsFlag } from "./tmpfs-spec.js";

export interface MountRequest {
  type: "bind" | "volume" | "tmpfs";
  /** bind: an absolute host path; volume: its name, "" for a new anonymous one; tmpfs: "". */
  source: string;
  /** Absolute, normalised path inside the container. */
  target: string;
  readOnly: boolean;
  /** Mode text as given ("ro", "rw", "ro,nocopy", or ""), for inspect's Mounts[].Mode. */
  mode: string;
  /** Do not fill a new empty volume with the image's content at `target`. */
  noCopy: boolean;
  /** -v creates a missing bind source; --mount refuses it, as Docker does. */
  createSource: boolean;
  /** The -v text, kept for inspect's HostConfig.Binds. */
  spec?: string;
  /** tmpfs: its mount options, Docker's defaults merged in. */
  tmpfsOptions?: string[];
  /** A --tmpfs flag's options as given (HostConfig.Tmpfs); such a tmpfs is not in Mounts. */
  tmpfsFlag?: string;
}

/** One `--tmpfs /path[:options]`. */
export function tmpfsRequest(text: string): MountRequest {
  const t = parseTmpfsFlag(text);
  return {
    type: "tmpfs",
    source: "",
    target: t.target,
    readOnly: t.options.includes("ro"),
    mode: "",
    noCopy: false,
    createSource: false,
    tmpfsOptions: t.options,
    tmpfsFlag: t.given,
  };
}

/** Docker's local volume names: a letter or digit, then letters, digits, `_`, `.`, `-`. */
export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

const MODES = new Set(["ro", "rw", "nocopy", "z", "Z"]);
const PROPAGATION = new Set(["private", "rprivate", "shared", "rshared", "slave", "rslave"]);

export function volumeNameProblem(name: string): string | undefined {
  if (VOLUME_NAME.test(name)) return undefined;
  return `create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`;
}

/** One `-v` value. */
export function parseVolumeFlag(text: string): MountRequest {
  const invalid = (why?: string) =>
    new MiniboxError(`invalid volume specification: '${text}'${why ? `: ${why}` : ""}`);
  if (text === "") throw invalid();
  const parts = text.split(":");
  let source = "";
  let target: string;
  let mode = "";
  if (parts.length === 1) {
    target = parts[0] as string;
  } else if (parts.length === 2) {
    // "/dst:ro" is a mode without a source: Docker refuses it too.
    if (isMode(parts[1] as string)) throw invalid();
    [source, target] = parts as [string, string];
  } else if (parts.length === 3) {
    [source, target, mode] = parts as [string, string, string];
    if (!isMode(mode)) throw invalid(`invalid mode: ${mode}`);
  } else {
    throw invalid();
  }
  if (parts.length > 1 && source === "") throw invalid();
  target = checkTarget(target, text, "-v");
  const flags = mode.split(",").filter(Boolean);
  const readOnly = flags.includes("ro");
  if (readOnly && flags.includes("rw")) throw invalid(`invalid mode: ${mode}`);
  if (source.startsWith("/")) {
    if (flags.includes("nocopy")) throw invalid("nocopy is not allowed for bind mounts");
    return {
      type: "bind",
      source: posix.normalize(source).replace(/(.)\/$/, "$1"),
      target,
      readOnly,
      mode,
      noCopy: false,
      createSource: true,
      spec: text,
    };
  }
  if (source !== "") {
    const problem = volumeNameProblem(source);
    if (problem) throw new MiniboxError(problem);
  }
  return {
    type: "volume",
    source,
    target,
    readOnly,
    mode,
    noCopy: flags.includes("nocopy"),
    createSource: true,
    spec: source === "" ? undefined : text,
  };
}

function isMode(text: string): boolean {
  const flags = text.split(",");
  return flags.every((f) => MODES.has(f) || PROPAGATION.has(f));
}

function checkTarget(target: string, text: string, flag: string): string {
  if (!target.startsWith("/")) {
    throw new MiniboxError(
      `invalid ${flag === "-v" ? "volume specification" : "mount config"}: '${text}': mount path must be absolute: '${target}'`,
    );
  }
  const normal = posix.normalize(target).replace(/(.)\/$/, "$1");
  if (normal === "/") {
    throw new MiniboxError(`invalid specification: destination can't be '/' in '${text}'`);
  }
  return normal;
}

/** One `--mount` value: comma-separated key=value fields (Docker's csv syntax, no quoting). */
interface MountFields {
  type: string;
  source: string;
  target: string;
  readOnly: boolean;
  noCopy: boolean;
  tmpfsSize?: string;
  tmpfsMode?: string;
}

/** `--mount`'s comma-separated key=value fields. */
function mountFields(text: string, bad: (why: string) => MiniboxError): MountFields {
  let type = "volume";
  let source = "";
  let target = "";
  let readOnly = false;
  let noCopy = false;
  let tmpfsSize: string | undefined;
  let tmpfsMode: string | undefined;
  for (const field of text.split(",")) {
    if (field === "") continue;
    const eq = field.indexOf("=");
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? undefined : field.slice(eq + 1);
    switch (key) {
      case "type":
        type = value ?? "";
        break;
      case "source":
      case "src":
        source = value ?? "";
        break;
      case "target":
      case "destination":
      case "dst":
        target = value ?? "";
        break;
      case "readonly":
      case "ro":
        readOnly = booleanValue(value, field, bad);
        break;
      case "volume-nocopy":
        noCopy = booleanValue(value, field, bad);
        break;
      case "tmpfs-size":
        tmpfsSize = value ?? "";
        break;
      case "tmpfs-mode":
        tmpfsMode = value ?? "";
        break;
      case "bind-propagation":
        if (!value || !PROPAGATION.has(value)) throw bad(`invalid value for ${key}: ${value}`);
        break;
      default:
        throw bad(`unexpected key '${key}' in '${field}'`);
    }
  }
  return { type, source, target, readOnly, noCopy, tmpfsSize, tmpfsMode };
}

export function parseMountFlag(text: string): MountRequest {
  const bad = (why: string) =>
    new MiniboxError(`invalid argument "${text}" for "--mount" flag: ${why}`);
  const { type, source, target, readOnly, noCopy, tmpfsSize, tmpfsMode } = mountFields(text, bad);
  if (type !== "bind" && type !== "volume" && type !== "tmpfs") {
    throw bad(`type '${type}' is not supported (use bind, volume or tmpfs)`);
  }
  if (target === "") throw bad("target is required");
  const normalTarget = checkTarget(target, text, "--mount");
  if (type !== "tmpfs" && (tmpfsSize !== undefined || tmpfsMode !== undefined)) {
    throw bad(`cannot mix 'tmpfs-*' options with mount type '${type}'`);
  }
  if (type === "tmpfs") {
    if (source !== "") throw bad('invalid mount config for type "tmpfs": source must not be set');
    if (noCopy) throw bad("volume-nocopy is only for volumes");
    return tmpfsMountRequest(
      normalTarget,
      readOnly,
      mountTmpfsOptions(tmpfsSize, tmpfsMode, readOnly, bad),
    );
  }
  if (type === "bind") {
    if (source === "") throw bad("source is required when specifying bind mount");
    if (!source.startsWith("/")) {
      throw bad(`invalid mount path: '${source}' mount path must be absolute`);
    }
    if (noCopy) throw bad("volume-nocopy is only for volumes");
    return {
      type,
      source: posix.normalize(source).replace(/(.)\/$/, "$1"),
      target: normalTarget,
      readOnly,
      mode: readOnly ? "ro" : "",
      noCopy: false,
      createSource: false,
    };
  }
  if (source !== "") {
    const problem = volumeNameProblem(source);
    if (problem) throw new MiniboxError(problem);
  }
  return {
    type,
    source,
    target: normalTarget,
    readOnly,
    mode: readOnly ? "ro" : "",
    noCopy,
    createSource: true,
  };
}

function tmpfsMountRequest(target: string, readOnly: boolean, options: string[]): MountRequest {
  return {
    type: "tmpfs",
    source: "",
    target,
    readOnly,
    mode: "",
    noCopy: false,
    createSource: false,
    tmpfsOptions: options,
  };
}

function booleanValue(
  value: string | undefined,
  field: string,
  bad: (why: string) => MiniboxError,
): boolean {
  if (value === undefined) return true;
  const v = value.toLowerCase();
  if (["true", "1"].includes(v)) return true;
  if (["false", "0"].includes(v)) return false;
  throw bad(`invalid value for '${field}'`);
}

/**
 * All the mounts of a container: the flags, --volumes-from's, then the image's VOLUME entries
 * that no flag covers (each an anonymous volume). Two mounts on one target
 * is Docker's "Duplicate mount point" error.
 */
export function containerMounts(
  requests: MountRequest[],
  imageVolumes: Record<string, unknown> | null | undefined,
  /** --volumes-from: another container's mounts; a flag on the same target wins, as in Docker. */
  inherited: MountRequest[] = [],
): MountRequest[] {
  const seen = new Set<string>();
  for (const r of requests) {
    if (seen.has(r.target)) throw new MiniboxError(`Duplicate mount point: ${r.target}`);
    seen.add(r.target);
  }
  const out = [...requests];
  for (const r of inherited) {
    if (seen.has(r.target)) continue;
    seen.add(r.target);
    out.push(r);
  }
  for (const raw of Object.keys(imageVolumes ?? {}).sort()) {
    if (!raw.startsWith("/")) continue;
    const target = posix.normalize(raw).replace(/(.)\/$/, "$1");
    if (target === "/" || seen.has(target)) continue;
    seen.add(target);
    out.push({
      type: "volume",
      source: "",
      target,
      readOnly: false,
      mode: "",
      noCopy: false,
      createSource: true,
    });
  }
  return out;
}
