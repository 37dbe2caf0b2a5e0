/**
 * A container's filesystem as `cp` reads and writes it, and paths resolved
 * inside it (CVE-2018-15664, CVE-2019-14271).
 *
 * - A running container: its init's `/proc/PID/root` (opened once, see
 *   containerRoot), the live tree in its
 *   own mount namespace, so volumes and bind mounts are copied through as
 *   Docker does. Node cannot enter a mount namespace (setns moves one
 *   thread), but a path under `/proc/PID/root` is resolved in that
 *   namespace by the kernel.
 * - A stopped one: nothing is mounted (see export.ts), so it is the image's
 *   layers with the container's upper directory on top, merged by
 *   overlayfs' rules; writes go to the upper directory, as overlayfs would
 *   put them. A path under one of its volumes or bind mounts is read and
 *   written in the mount's host directory instead (Docker mounts them for
 *   the copy; we reach them without a mount). A tmpfs has no content while
 *   the container is stopped: a path in one is refused.
 *
 * Symlinks are resolved here, by their text, clamped at the container's
 * root ("/.." is "/", an absolute target starts again at the container's
 * root): what RESOLVE_IN_ROOT does in the executor (native/in-root.c). The
 * resolved path has no symlink left in it, and every later open walks it
 * with O_NOFOLLOW from the root (src/sys/beneath.ts), so a directory swapped
 * for a link meanwhile fails the copy instead of leaving the container.
 */
import {
  closeSync,
  constants,
  lstatSync,
  openSync,
  readlinkSync,
  type Stats,
  statSync,
} from "node:fs";
import { join } from "node:path";
import { MiniboxError } from "../../errors.js";
import { imageLayerDirs, isOpaque, type LayerDir } from "../../image/image-tree.js";
import type { Store } from "../../image/store.js";
import type { IdMap } from "../export.js";
import { type ContainerView, readSpec } from "../lifecycle.js";
import { containerPaths } from "../rootfs.js";

const MAX_LINKS = 40;

export interface ContainerFs {
  name: string;
  /** Lowest first; a running container has one: /proc/PID/root. */
  layers: LayerDir[];
  /** Where writes go: the upper directory, or /proc/PID/root. */
  writable: string;
  /** Whether `writable` is an overlay upper directory (whiteouts and opaque dirs are ours to handle). */
  isUpper: boolean;
  /** Host ids ↔ container ids, when it has a user namespace. */
  map?: IdMap;
  /** The layer directory whose owners are host ids (shifted), to be mapped back. */
  mappedLayer?: string;
  /** A stopped container's volumes and bind mounts, reached through their host directories. */
  mounts?: HostMount[];
  /** A stopped container's tmpfs destinations: empty until it runs, so not reachable. */
  unmounted?: string[];
}

/** A stopped container's volume or bind mount, as cp reaches it. */
export interface HostMount {
  /** Where the container sees it, as path components. */
  dest: string[];
  source: string;
  readOnly: boolean;
  /**
   * The owners on disk are host ids: bound as is under a user namespace
   * (no idmapped mount), so they are mapped like the upper directory's.
   * An idmapped volume holds the container's own ids.
   */
  shifted: boolean;
}

/** An entry found in the container's tree: in which directory, at which relative path. */
export interface Found {
  stat: Stats;
  layer: LayerDir;
  rel: string;
}

export async function containerFs(store: Store, c: ContainerView): Promise<ContainerFs> {
  const spec = await readSpec(store.root, c.id).catch(() => {
    throw new MiniboxError(`container ${c.name} has no runtime spec; it was never created`);
  });
  const uid = spec.linux.uidMappings;
  const gid = spec.linux.gidMappings;
  const map = uid?.length && gid?.length ? { uid, gid } : undefined;
  const parts = (p: string) => p.split("/").filter((x) => x !== "" && x !== ".");
  if (c.running && c.pid) {
    const root = containerRoot(c.pid, c.name);
    return {
      name: c.name,
      layers: [{ dir: root }],
      writable: root,
      isUpper: false,
      map,
      mappedLayer: root,
    };
  }
  const image = (await store.readIndex()).images[c.imageId];
  if (!image) {
    throw new MiniboxError(
      `the image of container ${c.name} (${c.imageId}) is no longer in the store`,
    );
  }
  const upper = containerPaths(store.root, c.id).upper;
  return {
    name: c.name,
    layers: [...imageLayerDirs(store, image), { dir: upper }],
    writable: upper,
    isUpper: true,
    map,
    mappedLayer: upper,
    mounts: (c.mounts ?? [])
      .filter((m) => m.Type !== "tmpfs")
      .map((m) => ({
        dest: parts(m.Destination),
        source: m.Source,
        readOnly: !m.RW,
        // An idmapped volume's spec mount carries the "idmap" option (spec.ts volumeMount).
        shifted:
          map !== undefined &&
          !spec.mounts.some((s) => s.destination === m.Destination && s.options.includes("idmap")),
      })),
    unmounted: [
      ...(c.mounts ?? []).filter((m) => m.Type === "tmpfs").map((m) => m.Destination),
      ...Object.keys(c.tmpfs ?? {}),
    ],
  };
}

/** The mount `parts` lie in (the deepest one), if any. */
export function mountOf(fs: ContainerFs, parts: string[]): HostMount | undefined {
  let best: HostMount | undefined;
  for (const m of fs.mounts ?? []) {
    const inside = m.dest.length <= parts.length && m.dest.every((p, i) => parts[i] === p);
    if (inside && (!best || m.dest.length > best.dest.length)) best = m;
  }
  return best;
}

/** The entry at `parts` in the container's tree: in a mount's host directory when they lie in one. */
export function lstatIn(fs: ContainerFs, parts: string[]): Found | undefined {
  const m = mountOf(fs, parts);
  const rest = m ? parts.slice(m.dest.length) : parts;
  const found = lstatMerged(m ? [{ dir: m.source }] : fs.layers, rest);
  return found && { ...found, rel: rest.join("/") };
}

/**
 * Refuse a path in a stopped container's tmpfs: it is empty until the
 * container runs, and the upper directory's copy of that path is what the
 * tmpfs hides; a copy there would be silently invisible once it runs.
 */
export function checkMounted(fs: ContainerFs, parts: string[], path: string): void {
  const at = `/${parts.join("/")}`;
  for (const dest of fs.unmounted ?? []) {
    const d = dest.replace(/\/+$/, "");
    if (at === d || at.startsWith(`${d}/`)) {
      throw new MiniboxError(
        `${path} in container ${fs.name} is in its mount ${d}, which is there only while it runs`,
        "start the container first",
      );
    }
  }
}

/**
 * The running container's root, opened once through its init's
 * /proc/PID/root and named by our descriptor from then on: if the init
 * exits and its PID is reused, every later path still lands in the tree
 * we opened. A PID already reused by a host process (same mount namespace
 * as ours) is refused, not taken for the container.
 */
function containerRoot(pid: number, name: string): string {
  const fd = openSync(`/proc/${pid}/root`, constants.O_RDONLY | constants.O_DIRECTORY);
  const ns = (path: string) => statSync(path).ino;
  if (ns(`/proc/${pid}/ns/mnt`) === ns("/proc/self/ns/mnt")) {
    closeSync(fd);
    throw new MiniboxError(`container ${name} is not running anymore`);
  }
  return `/proc/self/fd/${fd}`; // kept open until minibox exits: one cp per process
}

/** The entry visible at `parts` (whose leading directories are resolved), and the layer it is in. */
export function lstatMerged(
  layers: LayerDir[],
  parts: string[],
): { stat: Stats; layer: LayerDir } | undefined {
  for (let i = layers.length - 1; i >= 0; i--) {
    const layer = layers[i] as LayerDir;
    if (parts.length === 0) {
      const stat = lstatSync(layer.dir, { throwIfNoEntry: false });
      if (stat) return { stat, layer };
      continue;
    }
    for (let n = 1; n <= parts.length; n++) {
      const rel = parts.slice(0, n).join("/");
      const stat = lstatSync(join(layer.dir, rel), { throwIfNoEntry: false });
      if (!stat) {
        // Missing here: the layers below decide, unless an opaque directory on the way hides them.
        for (let k = n - 1; k >= 1; k--)
          if (isOpaque(layer, parts.slice(0, k).join("/"))) return undefined;
        break;
      }
      if (stat.isCharacterDevice() && stat.rdev === 0) return undefined; // a whiteout
      if (n === parts.length) return { stat, layer };
      if (!stat.isDirectory()) return undefined;
    }
  }
  return undefined;
}

export interface Resolved {
  parts: string[];
  /** The entry there; undefined when nothing is (its parent exists). */
  found?: Found;
}

/**
 * `path` resolved inside the container: every symlink on the way followed
 * inside its root, the last one too when `followLast`. Throws a MiniboxError
 * when a directory on the way is missing or not a directory.
 */
export function resolveInContainer(fs: ContainerFs, path: string, followLast: boolean): Resolved {
  let parts = path.split("/").filter((p) => p !== "" && p !== ".");
  parts = clamp([], parts.join("/"));
  let links = 0;
  for (let depth = 0; depth < parts.length; depth++) {
    const prefix = parts.slice(0, depth + 1);
    const found = lstatIn(fs, prefix);
    const last = depth === parts.length - 1;
    if (!found) {
      if (last) return { parts };
      throw notFound(path, fs.name);
    }
    if (found.stat.isSymbolicLink() && (!last || followLast)) {
      if (++links > MAX_LINKS)
        throw new MiniboxError(
          `${path} in container ${fs.name}: too many levels of symbolic links`,
        );
      const target = readLink(join(found.layer.dir, found.rel), path, fs.name);
      parts = [...clamp(parts.slice(0, depth), target), ...parts.slice(depth + 1)];
      depth = -1; // walk again from the root: the target may itself hold links
      continue;
    }
    if (!last && !found.stat.isDirectory()) {
      throw new MiniboxError(
        `${path} in container ${fs.name}: ${prefix.join("/")} is not a directory`,
      );
    }
    if (last) return { parts, found };
  }
  return { parts, found: lstatIn(fs, []) };
}

/**
 * A link's text. The container may swap it away between our lstat and this
 * readlink (CVE-2018-15664's race): gone is "not found", no longer a link is
 * a change under our feet — both refuse the copy with one line.
 */
function readLink(hostPath: string, path: string, container: string): string {
  try {
    return readlinkSync(hostPath, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw notFound(path, container);
    if (code === "EINVAL")
      throw new MiniboxError(`${path} in container ${container} changed while it was copied`);
    throw err;
  }
}

export function notFound(path: string, container: string): MiniboxError {
  return new MiniboxError(`Could not find the file ${path} in container ${container}`);
}

/** A link's target resolved against its directory, clamped to the root ("/.." is "/"). */
function clamp(dir: string[], target: string): string[] {
  const out = target.startsWith("/") ? [] : [...dir];
  for (const part of target.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return out;
}
