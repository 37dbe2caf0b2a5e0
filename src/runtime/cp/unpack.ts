/**
 * Writing a tar stream into a directory tree that the container controls
 * (its upper directory, or /proc/PID/root while it runs), never outside it.
 *
 * Every directory on an entry's way is opened from the tree's root one
 * component at a time with O_NOFOLLOW (src/sys/beneath.ts): a symlink there
 * — in the container, or one the tar itself made a moment before ("a ->
 * /etc", then "a/passwd") — fails the copy instead of being followed. Files
 * are created O_EXCL|O_NOFOLLOW and their mode, owner and times set on the
 * descriptor, so nothing swapped in between is touched on the host.
 */
import fs from "node:fs";
import type { Readable } from "node:stream";
import tar from "tar-stream";
import { MiniboxError } from "../../errors.js";
import { atFd, openDirAt } from "../../sys/beneath.js";
import { lsetxattr, mknod, withFsIds } from "../../sys/libc.js";

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_DIRECTORY } = fs.constants;

export interface UnpackTarget {
  /** The tree's root: trusted itself, everything under it is not. */
  root: string;
  /** The directory entries go into, resolved (no symlink on the way). */
  dir: string[];
  /** The tar's first component is renamed to these (none: its contents go into `dir`). */
  rename?: { from: string; to: string[] };
  /** The owner to give an entry, from the tar's; undefined leaves it to whoever writes. */
  owner: (uid: number, gid: number) => [number, number] | undefined;
  /** An overlay upper directory: a whiteout where we write is removed, a directory put there made opaque. */
  isUpper: boolean;
  /**
   * Host ids to create entries as where host root cannot (an idmapped
   * volume of a user-namespaced container refuses creators outside its map):
   * the container root's. Their owner is set afterwards either way.
   */
  creator?: [number, number];
  /** For messages. */
  describe: (parts: string[]) => string;
}

type Header = tar.Header;

export async function unpackTar(input: Readable, target: UnpackTarget): Promise<void> {
  const extract = tar.extract();
  input.on("error", (err) => extract.destroy(err));
  input.pipe(extract);
  const dirTimes: { parts: string[]; mtime: Date }[] = [];
  for await (const entry of extract) {
    const parts = entryParts(entry.header, target);
    try {
      if (parts)
        await writeEntry(target, parts, entry.header, entry as unknown as Readable, dirTimes);
    } finally {
      entry.resume();
    }
  }
  // Directories' times last: adding their entries changed them.
  for (const { parts, mtime } of dirTimes.reverse()) {
    const fd = openTreeDir(target.root, parts, false);
    try {
      fs.futimesSync(fd, mtime, mtime);
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** Where the entry goes, relative to the root; undefined for the destination directory itself. */
function entryParts(header: Header, t: UnpackTarget): string[] | undefined {
  const name = header.name;
  let parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) {
    throw new MiniboxError(
      `the archive's entry ${JSON.stringify(name)} leaves the destination (a ".." in it)`,
    );
  }
  if (t.rename && name.split("/").filter((p) => p !== "")[0] === t.rename.from) {
    parts = [...t.rename.to, ...parts.slice(t.rename.from === "." ? 0 : 1)];
  }
  if (parts.length === 0) return undefined;
  return [...t.dir, ...parts];
}

/** The directory `parts` under `root`, never through a symlink; missing ones made (0755) when `create`. */
export function openTreeDir(
  root: string,
  parts: string[],
  create: boolean,
  creator?: [number, number],
): number {
  let fd = fs.openSync(root, O_RDONLY | O_DIRECTORY);
  try {
    for (const part of parts) {
      if (create && !fs.lstatSync(atFd(fd, part), { throwIfNoEntry: false })) {
        const at = atFd(fd, part);
        creating(creator, () => fs.mkdirSync(at, 0o755));
        // A directory the tar did not list: the container root's, as Docker makes it.
        if (creator) fs.lchownSync(at, creator[0], creator[1]);
      }
      const next = openDirAt(fd, part);
      fs.closeSync(fd);
      fd = next;
    }
    return fd;
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

async function writeEntry(
  t: UnpackTarget,
  parts: string[],
  h: Header,
  body: Readable,
  dirTimes: { parts: string[]; mtime: Date }[],
): Promise<void> {
  const name = parts[parts.length - 1] as string;
  let dirFd: number;
  try {
    dirFd = openTreeDir(t.root, parts.slice(0, -1), true, t.creator);
  } catch (err) {
    throw new MiniboxError(
      `cannot write ${t.describe(parts)}: ${describeErr(err)} on the way (a symlink is never followed there)`,
    );
  }
  try {
    const at = atFd(dirFd, name);
    const way = clearTheWay(t, parts, at, h.type === "directory");
    const meta = {
      mode: (h.mode ?? 0o644) & 0o7777,
      mtime: h.mtime ?? new Date(),
      owner: t.owner(h.uid ?? 0, h.gid ?? 0),
    };
    if (h.type === "directory") {
      makeDir(t, at, way, meta);
      dirTimes.push({ parts, mtime: meta.mtime });
    } else if (h.type === "file" || h.type === "contiguous-file") {
      await writeFile(t, at, body, meta);
    } else if (h.type === "link") {
      hardLink(t, at, h);
    } else if (makeSpecial(t, at, h, meta.mode)) {
      if (meta.owner) fs.lchownSync(at, meta.owner[0], meta.owner[1]);
      fs.lutimesSync(at, meta.mtime, meta.mtime);
    }
  } finally {
    fs.closeSync(dirFd);
  }
}

interface Meta {
  mode: number;
  mtime: Date;
  owner?: [number, number];
}

/**
 * What is at `at` now: a non-directory is removed for the new entry, a
 * directory kept for a directory (merged, as Docker does); a whiteout in
 * an upper directory removed (`wasWhiteout`). A mismatch is Docker's error.
 */
function clearTheWay(t: UnpackTarget, parts: string[], at: string, isDir: boolean) {
  const existing = fs.lstatSync(at, { throwIfNoEntry: false });
  if (!existing) return { exists: false, wasWhiteout: false };
  if (t.isUpper && existing.isCharacterDevice() && existing.rdev === 0) {
    fs.unlinkSync(at);
    return { exists: false, wasWhiteout: true };
  }
  if (isDir && !existing.isDirectory()) {
    throw new MiniboxError(`cannot overwrite non-directory ${t.describe(parts)} with directory`);
  }
  if (!isDir && existing.isDirectory()) {
    throw new MiniboxError(`cannot overwrite directory ${t.describe(parts)} with non-directory`);
  }
  if (!isDir) fs.unlinkSync(at);
  return { exists: isDir, wasWhiteout: false };
}

function makeDir(
  t: UnpackTarget,
  at: string,
  way: { exists: boolean; wasWhiteout: boolean },
  meta: Meta,
) {
  if (!way.exists) creating(t.creator, () => fs.mkdirSync(at, 0o700));
  // Under a whiteout, the lower layers' directory must stay hidden.
  if (way.wasWhiteout) lsetxattr(at, "trusted.overlay.opaque", Buffer.from("y"));
  const fd = fs.openSync(at, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  try {
    if (meta.owner) fs.fchownSync(fd, meta.owner[0], meta.owner[1]);
    fs.fchmodSync(fd, meta.mode);
  } finally {
    fs.closeSync(fd);
  }
}

async function writeFile(t: UnpackTarget, at: string, body: Readable, meta: Meta) {
  const fd = creating(t.creator, () =>
    fs.openSync(at, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600),
  );
  try {
    for await (const chunk of body) fs.writeSync(fd, chunk as Buffer);
    if (meta.owner) fs.fchownSync(fd, meta.owner[0], meta.owner[1]);
    fs.fchmodSync(fd, meta.mode); // after chown, which clears setuid bits
    fs.futimesSync(fd, meta.mtime, meta.mtime);
  } finally {
    fs.closeSync(fd);
  }
}

/** A hard link to an earlier entry of the same tar, reached like any other path in the tree. */
function hardLink(t: UnpackTarget, at: string, h: Header) {
  const targetParts = entryParts({ ...h, name: h.linkname ?? "" }, t);
  if (!targetParts)
    throw new MiniboxError(`a hard link to the destination directory itself: ${h.name}`);
  const fromFd = openTreeDir(t.root, targetParts.slice(0, -1), false);
  try {
    const from = atFd(fromFd, targetParts[targetParts.length - 1] as string);
    creating(t.creator, () => fs.linkSync(from, at));
  } finally {
    fs.closeSync(fromFd);
  }
}

/** A symlink, device node or FIFO; false for a header that is none (pax/GNU bookkeeping). */
function makeSpecial(t: UnpackTarget, at: string, h: Header, mode: number): boolean {
  if (h.type === "symlink") {
    creating(t.creator, () => fs.symlinkSync(h.linkname ?? "", at));
    return true;
  }
  const type = { fifo: 0o010000, "character-device": 0o020000, "block-device": 0o060000 }[
    h.type as string
  ];
  if (type === undefined) return false;
  creating(t.creator, () => mknod(at, type | mode, h.devmajor ?? 0, h.devminor ?? 0));
  return true;
}

/** `create` as host root; again as `creator` where an idmapped mount refuses root (EOVERFLOW). */
function creating<T>(creator: [number, number] | undefined, create: () => T): T {
  try {
    return create();
  } catch (err) {
    if (!creator || (err as NodeJS.ErrnoException).code !== "EOVERFLOW") throw err;
    return withFsIds(creator[0], creator[1], create);
  }
}

function describeErr(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ELOOP") return "a symlink";
  if (code === "ENOTDIR") return "a non-directory";
  return code ?? String(err);
}
