/**
 * Copying a tree of files with what a container sees of them: types, owners
 * (shifted into a user namespace's range when asked), permission bits,
 * symlinks, device nodes, and, when copying a layer, overlayfs' opaque
 * marker. Two callers: a layer's shifted copy, for kernels without idmapped
 * mounts (rootfs.ts shiftedCopy), and a volume's copy-up from the image
 * (volumes.ts copyUpIfEmpty).
 *
 * Hard links are copied as separate files, and no other xattr travels: both
 * copies are made for one container's use, as Docker's userns-remap and
 * volume copy-up make them.
 */
import type { Stats } from "node:fs";
import {
  chmod,
  copyFile,
  lchown,
  lstat,
  mkdir,
  readdir,
  readlink,
  symlink,
} from "node:fs/promises";
import { join } from "node:path";
import { isOpaque } from "../image/image-tree.js";
import { major, minor } from "../sys/devnum.js";
import { lsetxattr, mknod } from "../sys/libc.js";

/** One object to copy. */
export interface CopySource {
  /** Path relative to the copy's root; "" is the root itself. */
  rel: string;
  /** Where the object is now. */
  source: string;
  /** lstat of `source`. */
  stat: Stats;
}

export interface CopyOptions {
  /** Added to every owner: the container's id offset (0/0 when absent). */
  shift?: { uid: number; gid: number };
  /**
   * The destination's root exists already (a volume's `_data`): it takes
   * the source root's owner and mode but is not created.
   */
  intoExisting?: boolean;
  /** Mark directories opaque where the source's are: copying a layer, not a merged view. */
  keepOpaque?: boolean;
}

const OPAQUE_XATTR = "trusted.overlay.opaque";

/** Copy `sources` (parents before their children) to under `dst`. */
export async function copyTree(
  sources: Iterable<CopySource> | AsyncIterable<CopySource>,
  dst: string,
  options: CopyOptions = {},
): Promise<void> {
  for await (const s of sources) {
    await copyObject(s, s.rel === "" ? dst : join(dst, s.rel), options);
  }
}

/**
 * Every object at and under `dir`, parents first, as it is on disk: unlike
 * a merged view of layers, whiteouts are objects like any other here.
 */
export async function* walkDir(dir: string, rel = ""): AsyncGenerator<CopySource> {
  const source = rel === "" ? dir : join(dir, rel);
  const stat = await lstat(source);
  yield { rel, source, stat };
  if (!stat.isDirectory()) return;
  for (const name of await readdir(source))
    yield* walkDir(dir, rel === "" ? name : join(rel, name));
}

async function copyObject(src: CopySource, dst: string, options: CopyOptions): Promise<void> {
  const { stat } = src;
  const shift = options.shift ?? { uid: 0, gid: 0 };
  if (stat.isDirectory()) {
    if (!(src.rel === "" && options.intoExisting)) await mkdir(dst, { mode: stat.mode & 0o7777 });
    if (options.keepOpaque && isOpaque({ dir: src.source }, "")) {
      lsetxattr(dst, OPAQUE_XATTR, Buffer.from("y"));
    }
  } else if (stat.isSymbolicLink()) {
    await symlink(await readlink(src.source), dst);
  } else if (stat.isFile()) {
    await copyFile(src.source, dst);
  } else {
    // Devices, fifos, sockets, and whiteouts (character devices 0/0).
    mknod(dst, stat.mode, major(stat.rdev), minor(stat.rdev));
  }
  await lchown(dst, stat.uid + shift.uid, stat.gid + shift.gid);
  // After lchown, which clears setuid/setgid; never on a symlink, whose mode means nothing.
  if (!stat.isSymbolicLink()) await chmod(dst, stat.mode & 0o7777);
}
