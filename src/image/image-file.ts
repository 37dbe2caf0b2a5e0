/**
 * Reading one file of an image (or of a running container, through
 * /proc/PID/root) on the host, as the container would see it: /etc/passwd
 * and /etc/group, to resolve `-u`. The image is hostile input, and the host
 * reads it with the host's root, so:
 *
 *   - symlinks are resolved inside the image, never on the host: an
 *     /etc/passwd linked to /etc/shadow (or an /etc linked to /root) reads
 *     the image's /etc/shadow, as the container would, not the host's;
 *   - every directory on the way is opened without following links
 *     (src/sys/beneath.ts), so a running container swapping one for a
 *     symlink cannot redirect the read either;
 *   - the file must be a regular file of at most MAX_IMAGE_FILE bytes: a
 *     FIFO would block the read, a huge file would fill memory.
 *
 * Layers are merged with overlayfs' rules (see image-tree.ts): the topmost
 * layer with the path wins, a whiteout or an opaque directory above hides
 * the layers below, a non-directory hides what is under its path below.
 */
import { closeSync, fstatSync, lstatSync, openSync, readlinkSync, readSync } from "node:fs";
import { MiniboxError } from "../errors.js";
import { atFd, openDirAt, openFileAt } from "../sys/beneath.js";
import { isOpaque, type LayerDir } from "./image-tree.js";

/** Larger than any real passwd or group file; a bigger one is refused, not read into memory. */
export const MAX_IMAGE_FILE = 16 * 1024 * 1024;
/** As the kernel's own limit on links followed in one lookup. */
const MAX_LINKS = 40;

type Lookup =
  | { kind: "absent" }
  | { kind: "file"; fd: number }
  | { kind: "link"; depth: number; target: string };

/** One layer's answer: found (or hidden), or look below with what this layer knew. */
type LayerLookup = Lookup | { kind: "below"; dirs: number };

/**
 * The file at `path` in the merged layers (lowest first), or undefined when
 * the image has no regular file there. Throws a MiniboxError for a file too
 * large or a loop of links.
 */
export async function readImageFile(layers: LayerDir[], path: string): Promise<string | undefined> {
  let parts = path.split("/").filter(Boolean);
  for (let links = 0; links <= MAX_LINKS; links++) {
    const found = lookup(layers, parts);
    if (found.kind === "absent") return undefined;
    if (found.kind === "file") return readSmallFile(found.fd, path);
    parts = [
      ...resolveInRoot(parts.slice(0, found.depth), found.target),
      ...parts.slice(found.depth + 1),
    ];
  }
  throw new MiniboxError(`the image's ${path}: too many levels of symbolic links`);
}

/** A link's target resolved against its directory, clamped to the image root ("/.." is "/"). */
function resolveInRoot(dir: string[], target: string): string[] {
  const out = target.startsWith("/") ? [] : [...dir];
  for (const part of target.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return out;
}

function lookup(layers: LayerDir[], parts: string[]): Lookup {
  // How many leading components a higher layer showed as real directories:
  // a lower layer's non-directory there is hidden by them.
  let dirs = 0;
  for (let i = layers.length - 1; i >= 0; i--) {
    const found = lookupInLayer(layers[i] as LayerDir, parts, dirs);
    if (found.kind !== "below") return found;
    dirs = Math.max(dirs, found.dirs);
  }
  return { kind: "absent" };
}

function lookupInLayer(layer: LayerDir, parts: string[], dirsAbove: number): LayerLookup {
  let dirFd: number;
  try {
    dirFd = openSync(layer.dir, "r");
  } catch {
    return { kind: "below", dirs: 0 };
  }
  try {
    for (let depth = 0; depth < parts.length; depth++) {
      const name = parts[depth] as string;
      const st = lstatSync(atFd(dirFd, name), { throwIfNoEntry: false });
      if (!st) return belowOrOpaque(layer, parts, depth);
      const last = depth === parts.length - 1;
      const whiteout = st.isCharacterDevice() && st.rdev === 0;
      // A whiteout, or a non-directory hidden by a higher layer's directory: nothing below.
      if (whiteout || (!st.isDirectory() && depth < dirsAbove)) return { kind: "absent" };
      if (st.isSymbolicLink())
        return { kind: "link", depth, target: readlinkSync(atFd(dirFd, name)) };
      if (last) {
        const fd = st.isFile() ? openFileAt(dirFd, name, st) : undefined;
        return fd === undefined ? { kind: "absent" } : { kind: "file", fd };
      }
      if (!st.isDirectory()) return { kind: "absent" }; // a file on the way
      const next = openDirAt(dirFd, name);
      closeSync(dirFd);
      dirFd = next;
    }
    return { kind: "absent" };
  } catch {
    return { kind: "absent" }; // changed while we looked (a running container): as if absent
  } finally {
    closeSync(dirFd);
  }
}

/** `parts[depth]` is missing in this layer: the layers below decide, unless an opaque directory on the way hides them. */
function belowOrOpaque(layer: LayerDir, parts: string[], depth: number): LayerLookup {
  for (let n = depth; n >= 1; n--) {
    if (isOpaque(layer, parts.slice(0, n).join("/"))) return { kind: "absent" };
  }
  return { kind: "below", dirs: depth };
}

function readSmallFile(fd: number, path: string): string {
  try {
    const { size } = fstatSync(fd);
    if (size > MAX_IMAGE_FILE) {
      throw new MiniboxError(
        `the image's ${path} is too large (${size} bytes; at most ${MAX_IMAGE_FILE} are read)`,
        "minibox reads it to resolve the container's user; the image is broken or hostile",
      );
    }
    const buf = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, buf, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got).toString("utf8");
  } finally {
    closeSync(fd);
  }
}
