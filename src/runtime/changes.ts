/**
 * `diff CONTAINER`: what the container changed, as Docker's `A`/`C`/`D`
 * lines, read from its overlay upper directory (pkg/archive's `changes`
 * with overlay's whiteout rules):
 *
 *  - a 0/0 character device or an opaque directory is `D` (deleted);
 *  - anything else is `A`, unless a layer below has the path: then `C` — but
 *    a directory copied up with the same mode, size and mtime is left out
 *    (it is only there because something inside it changed);
 *  - the parent directory of an `A` or `D` is `C`, once, before it.
 *
 * Order: depth first, each directory's names by bytes (Go's filepath.Walk).
 * Nothing is followed: lstat only, so a symlink the container planted
 * cannot send the walk out of the upper directory.
 */
import fs from "node:fs";
import path from "node:path";
import type { LayerDir } from "../image/image-tree.js";
import { lgetxattr, llistxattr } from "../sys/libc.js";

export interface Change {
  kind: "A" | "C" | "D";
  /** Absolute inside the container: "/etc/passwd". */
  path: string;
}

const { S_IFMT, S_IFDIR, S_IFCHR } = fs.constants;
const OPAQUE_XATTR = "trusted.overlay.opaque";

/**
 * The mount points minibox itself puts in the upper directory for the
 * per-container /etc files (empty files, bind-mounted over while it runs).
 * They are not the container's work: Docker keeps them in an "-init" layer,
 * out of `diff` and `commit`.
 */
const ETC_MOUNT_POINTS = ["etc/hostname", "etc/hosts", "etc/resolv.conf"];

/**
 * The mount points of the kernel filesystems the runtime mounts; made in the
 * upper directory when the image has none (Docker makes them in its "-init"
 * layer, so they are no change of the container's either).
 */
const KERNEL_MOUNT_POINTS = ["dev", "proc", "sys"];

/**
 * Paths (relative to the upper directory) that `diff` and `commit` leave
 * out: the empty /etc mount points, /etc itself when they are all it holds
 * (it was copied up or made only for them), and empty /dev, /proc, /sys
 * that no image layer has.
 */
export function runtimeOnlyPaths(upperDir: string, lowers: LayerDir[]): Set<string> {
  const skip = new Set<string>();
  for (const rel of ETC_MOUNT_POINTS) {
    const st = lstatOrUndefined(path.join(upperDir, rel));
    if (st?.isFile() && st.size === 0n) skip.add(rel);
  }
  if (skip.size > 0) {
    const etc = fs.readdirSync(path.join(upperDir, "etc"));
    if (etc.every((name) => skip.has(`etc/${name}`))) skip.add("etc");
  }
  const topFirst = [...lowers].reverse();
  for (const rel of KERNEL_MOUNT_POINTS) {
    const st = lstatOrUndefined(path.join(upperDir, rel));
    if (!st?.isDirectory() || lowerEntry(topFirst, rel)) continue;
    if (fs.readdirSync(path.join(upperDir, rel)).length === 0) skip.add(rel);
  }
  return skip;
}

/** The container's changes: `upperDir` over `lowers` (the image's layers, bottom first). */
export function containerChanges(upperDir: string, lowers: LayerDir[]): Change[] {
  const skip = runtimeOnlyPaths(upperDir, lowers);
  const topFirst = [...lowers].reverse();
  const changes: Change[] = [];
  const changedDirs = new Set<string>();

  const visit = (rel: string) => {
    const full = path.join(upperDir, rel);
    const st = fs.lstatSync(full, { bigint: true });
    const type = Number(st.mode) & S_IFMT;
    const deleted = isWhiteout(st) || (type === S_IFDIR && isOpaque(full));
    let kind: Change["kind"] = deleted ? "D" : "A";
    if (!deleted) {
      const lower = lowerEntry(topFirst, rel);
      if (lower) {
        if (type === S_IFDIR && lower.isDirectory() && sameDir(st, lower)) return walk(rel);
        kind = "C";
      }
    }
    if (type === S_IFDIR) changedDirs.add(rel);
    if (kind !== "C") {
      const parent = path.posix.dirname(rel);
      if (parent !== "." && !changedDirs.has(parent)) {
        changes.push({ kind: "C", path: `/${parent}` });
        changedDirs.add(parent);
      }
    }
    changes.push({ kind, path: `/${rel}` });
    if (type === S_IFDIR) walk(rel);
  };
  const walk = (dirRel: string) => {
    const names = fs
      .readdirSync(path.join(upperDir, dirRel), { encoding: "buffer" })
      .sort(Buffer.compare)
      .map((n) => n.toString("utf8"));
    for (const name of names) {
      const rel = dirRel === "" ? name : `${dirRel}/${name}`;
      if (!skip.has(rel)) visit(rel);
    }
  };
  walk("");
  return changes;
}

/** The path in the highest layer that has it (a whiteout there means no layer has it). */
function lowerEntry(topFirst: LayerDir[], rel: string): fs.BigIntStats | undefined {
  for (const layer of topFirst) {
    const st = lstatOrUndefined(path.join(layer.dir, rel));
    if (st) return isWhiteout(st) ? undefined : st;
  }
  return undefined;
}

/** Docker's test for "this directory was only copied up": same mode, size and mtime (to the second). */
function sameDir(a: fs.BigIntStats, b: fs.BigIntStats): boolean {
  return (
    a.mode === b.mode &&
    a.size === b.size &&
    a.mtimeNs / 1_000_000_000n === b.mtimeNs / 1_000_000_000n
  );
}

function isWhiteout(st: fs.BigIntStats): boolean {
  return (Number(st.mode) & S_IFMT) === S_IFCHR && st.rdev === 0n;
}

function isOpaque(full: string): boolean {
  if (!llistxattr(full).includes(OPAQUE_XATTR)) return false;
  return lgetxattr(full, OPAQUE_XATTR)?.toString() === "y";
}

function lstatOrUndefined(p: string): fs.BigIntStats | undefined {
  try {
    return fs.lstatSync(p, { bigint: true });
  } catch {
    return undefined;
  }
}
