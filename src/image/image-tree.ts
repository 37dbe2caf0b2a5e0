/**
 * An image's filesystem as a container would see it, without mounting
 * anything: the layers' directories merged the way overlayfs merges them.
 * `COPY --from=stage` reads from this view.
 *
 * The rules, layer by layer from the top:
 *   - the first layer that has a path wins; a directory in two layers is
 *     merged (its entries come from both), anything else is not;
 *   - a whiteout (character device 0/0) hides the path in the layers below;
 *   - an opaque directory hides what the layers below have under it;
 *   - a non-directory hides whatever the layers below have under its path.
 *
 * Doing it in code rather than with a read-only overlay mount keeps a build
 * step free of mounts to clean up, and works without privileges.
 */
import { closeSync, constants, openSync, type Stats } from "node:fs";
import { lstat, readdir, readlink } from "node:fs/promises";
import { join, posix } from "node:path";
import { atFd } from "../sys/beneath.js";
import { lgetxattr } from "../sys/libc.js";
import type { ImageRecord, Store } from "./store.js";

export { readImageFile } from "./image-file.js";

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = constants;

/** A layer directory, with the opaque directories recorded when it was unpacked. */
export interface LayerDir {
  dir: string;
  opaqueDirs?: string[];
}

/** An image's layer directories in the store, lowest first. */
export function imageLayerDirs(store: Store, image: ImageRecord): LayerDir[] {
  return image.layers.map((l) => ({
    dir: store.layerDiffDir(l.chainId),
    opaqueDirs: l.opaqueDirs,
  }));
}

export interface TreeEntry {
  /** Relative to the image root, posix separators, no leading "/". */
  path: string;
  type: "file" | "dir" | "symlink" | "other";
  /** Permission bits (incl. setuid/setgid/sticky). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  linkTarget?: string;
  /** Where the bytes are: the path inside the layer directory that won. */
  source: string;
  /** That layer directory: whoever opens `source` again resolves `path` under it without links. */
  layerDir: string;
  /** lstat of `source`: inode, device numbers, times for whoever needs them (export). */
  stat: Stats;
}

/**
 * The merged entries at and under `root` (a path inside the image, "" or
 * "/" for everything), sorted by path. Layers lowest first, as images list
 * them. Empty when `root` does not exist in the image.
 */
export async function listImageTree(layers: LayerDir[], root: string): Promise<TreeEntry[]> {
  const start = posix.normalize(`/${root}`).replace(/^\/+|\/+$/g, "");
  const found = new Map<string, TreeEntry>();
  // Paths the layers seen so far hide, with everything under them.
  const hidden = new Set<string>();
  const isHidden = (rel: string) => ancestorsAndSelf(rel).some((p) => hidden.has(p));

  for (let i = layers.length - 1; i >= 0; i--) {
    const layer = layers[i] as LayerDir;
    const hideBelow: string[] = [];
    const opaque = (rel: string) => isOpaque(layer, rel);

    // The way down to `start` in this layer: a whiteout, a non-directory or
    // an opaque directory on it hides the lower layers' copy of `start`.
    let reachable = true;
    const parts = start ? start.split("/") : [];
    for (let n = 1; n < parts.length && reachable; n++) {
      const dir = parts.slice(0, n).join("/");
      const st = await lstat(join(layer.dir, dir)).catch(() => undefined);
      if (!st?.isDirectory()) {
        if (st) hideBelow.push(dir); // a whiteout or a file ends the stack here
        reachable = false;
      } else if (opaque(dir)) hideBelow.push(`${dir}/`);
    }

    // Each directory is read through a descriptor opened from its parent's
    // without following links (src/sys/beneath.ts): a directory swapped for
    // a symlink meanwhile (a running container's upper directory) is never
    // walked into, so the listing stays inside the layer.
    const visit = async (rel: string, st: Stats, at: string): Promise<void> => {
      if (isHidden(rel)) return;
      if (st.isCharacterDevice() && st.rdev === 0) {
        hideBelow.push(rel);
        return;
      }
      const seen = found.get(rel);
      if (seen && seen.type !== "dir") return;
      if (seen && !st.isDirectory()) {
        hideBelow.push(`${rel}/`); // a non-directory under a directory ends the stack
        return;
      }
      if (!seen) found.set(rel, await entryOf(rel, layer.dir, at, st));
      if (!st.isDirectory()) return;
      if (rel && opaque(rel)) hideBelow.push(`${rel}/`);
      let fd: number;
      try {
        fd = openSync(at, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      } catch {
        return; // gone, or no longer a directory
      }
      try {
        const children = await readdir(atFd(fd, ""));
        for (const name of children) {
          const childAt = atFd(fd, name);
          const childSt = await lstat(childAt).catch(() => undefined);
          if (childSt) await visit(rel ? `${rel}/${name}` : name, childSt, childAt);
        }
      } catch {
        // unreadable directory: listed without its contents, as before
      } finally {
        closeSync(fd);
      }
    };
    if (reachable && !isHidden(start)) {
      const at = join(layer.dir, start);
      const st = await lstat(at).catch(() => undefined);
      if (st) await visit(start, st, at);
    }
    for (const h of hideBelow) hidden.add(h);
  }
  return [...found.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * "a/b/c" → ["a/b/c", "a/b/c/", "a/b/", "a/"]… the keys `hidden` uses: a
 * path itself (whiteout, non-directory) and "dir/" for what is under an
 * opaque directory (the directory itself stays).
 */
function ancestorsAndSelf(rel: string): string[] {
  if (!rel) return [""];
  const parts = rel.split("/");
  const out = [rel];
  for (let n = parts.length - 1; n >= 1; n--) {
    const dir = parts.slice(0, n).join("/");
    out.push(`${dir}/`, dir);
  }
  return out;
}

async function entryOf(rel: string, layerDir: string, at: string, st: Stats): Promise<TreeEntry> {
  const type = st.isDirectory()
    ? "dir"
    : st.isFile()
      ? "file"
      : st.isSymbolicLink()
        ? "symlink"
        : "other";
  return {
    path: rel,
    type,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    size: type === "file" ? st.size : 0,
    linkTarget: type === "symlink" ? await readlink(at) : undefined,
    source: join(layerDir, rel),
    layerDir,
    stat: st,
  };
}

/**
 * Is `rel` an opaque directory in this layer? From the record made when it
 * was unpacked, else from overlayfs's own xattr (older layer records).
 */
export function isOpaque(layer: LayerDir, rel: string): boolean {
  if (layer.opaqueDirs) return layer.opaqueDirs.includes(rel);
  try {
    return lgetxattr(join(layer.dir, rel), "trusted.overlay.opaque")?.toString() === "y";
  } catch {
    return false;
  }
}
