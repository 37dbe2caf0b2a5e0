/**
 * Unpacking one image layer (a tar stream, usually gzip-compressed) into a
 * directory that overlayfs can stack as a lower layer.
 *
 * One pass over the stream does three jobs:
 *  1. the diffID, the sha256 of the *uncompressed* tar, is computed as the
 *     bytes flow, so the caller can check it against the image config's
 *     `rootfs.diff_ids` without reading the blob twice;
 *  2. OCI whiteouts become overlayfs whiteouts: `dir/.wh.NAME` becomes a 0/0
 *     character device `dir/NAME`, and `dir/.wh..wh..opq` becomes the xattr
 *     `trusted.overlay.opaque=y` on `dir`;
 *  3. every path is checked, so a malicious layer cannot write outside the
 *     directory: `..` names, writes through a symlink made by an earlier entry,
 *     hard links to files outside.
 *
 * The filesystem calls are synchronous on purpose. A tar stream must be
 * applied strictly in order (an entry can replace or link to an earlier one),
 * so async calls would not overlap with each other; they would only add a
 * thread-pool round trip to each of the ~6 syscalls a file needs. The overlap
 * that matters still happens: gunzip runs on libuv's thread pool while the
 * main thread writes files.
 */
import { createHash, type Hash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { MiniboxError } from "../errors.js";
import { lsetxattr, mknod, SysError } from "../sys/libc.js";
import { corruptLayer, decompress } from "./compression.js";

export interface UnpackResult {
  /** "sha256:<hex>" of the UNCOMPRESSED tar stream. */
  diffID: string;
  /** Sum of the sizes of the regular files written (bytes), like Docker's layer size. */
  size: number;
}

export interface UnpackOptions {
  /**
   * Called for each entry, for --trace style diagnostics. `type` is the tar
   * type ("file", "directory", "symlink", "link", "character-device",
   * "block-device", "fifo"), or "whiteout" / "opaque" for whiteout markers and
   * "aufs-metadata" for the `.wh..wh.*` entries that are skipped.
   */
  onEntry?: (name: string, type: string) => void;
}

/** A layer entry that would write outside the layer directory (or otherwise cannot be trusted). */
/** The directory an opaque-whiteout marker applies to: "./opt/x/.wh..wh..opq" → "opt/x". */
export function opaqueDirOf(markerName: string): string {
  const parts = markerName.split("/").filter((p) => p && p !== ".");
  parts.pop();
  return parts.join("/");
}

export class UnsafeLayerError extends MiniboxError {
  constructor(message: string) {
    super(message, "the image may have been tampered with; nothing was unpacked outside its layer");
    this.name = "UnsafeLayerError";
  }
}

/**
 * Unpacks a (gzip | uncompressed) tar layer from `input` into `destDir`,
 * which exists and is empty. The compression is detected from the magic
 * bytes; zstd, xz and bzip2 are recognised and refused with a clear error.
 * On failure the promise rejects with a MiniboxError and `destDir` may hold a
 * partial layer: the caller deletes it. Nothing is ever written outside it.
 */
export async function unpackLayer(
  input: NodeJS.ReadableStream | Readable,
  destDir: string,
  options: UnpackOptions = {},
): Promise<UnpackResult> {
  // Resolve the destination once, so "inside the layer" is about a real path.
  const root = await fs.promises.realpath(destDir);
  const writer = new LayerWriter(root, options.onEntry);
  const hash = createHash("sha256");
  // allowUnknownFormat: pre-POSIX (v7) headers are still valid tar.
  const extract = tar.extract({ allowUnknownFormat: true } as Parameters<typeof tar.extract>[0]);

  // tar-stream hands over one entry at a time and waits for next(): entries
  // are applied strictly in order, and its parser pauses (backpressure) while
  // an entry is being written.
  let current: Promise<void> = Promise.resolve();
  extract.on("entry", (header, data, next) => {
    current = writer.entry(header as unknown as EntryHeader, data as AsyncIterable<Buffer>);
    current.then(() => next(), next);
  });

  try {
    // The hash sits between the decompressor and the parser, so it sees every
    // uncompressed byte, including the end-of-archive padding.
    // (tar-stream's streams are streamx streams, which pipeline() accepts but
    // whose types do not name Node's stream interfaces: hence the casts.)
    await pipeline(
      input as Readable,
      decompress,
      hashed(hash),
      extract as unknown as NodeJS.WritableStream,
    );
    // The parser can finish before the last entry is applied (a tar that
    // lacks its end-of-archive blocks), so wait for that entry too.
    await current;
  } catch (err) {
    // Let the entry in progress settle, so nothing is written after we return.
    await current.catch(() => {});
    throw toUnpackError(err);
  }
  writer.finish();
  return { diffID: `sha256:${hash.digest("hex")}`, size: writer.size };
}

/**
 * tar-stream's header as it really is at run time: the type is null for a
 * typeflag it does not know, and PAX records are a string map.
 */
type EntryHeader = Omit<tar.Header, "type" | "pax"> & {
  type: tar.Header["type"] | null;
  pax?: Record<string, string> | null;
};

interface Times {
  atime: number;
  mtime: number;
}

const WHITEOUT_PREFIX = ".wh.";
const OPAQUE_MARKER = ".wh..wh..opq";
/** `.wh..wh.plnk` and friends: aufs bookkeeping with no meaning for overlayfs. */
const AUFS_META_PREFIX = ".wh..wh.";
const OPAQUE_XATTR = "trusted.overlay.opaque";

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;
const EEXIST = 17;
const EPERM = 1;
const ENOTSUP = 95;

// O_EXCL makes open() fail instead of following whatever is already at the
// path (a symlink planted by an earlier entry); we then remove it and retry.
const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
const CREATE_FILE = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;

/** Applies tar entries to the layer directory, one at a time, in stream order. */
class LayerWriter {
  /** Bytes of regular-file content written: the layer's size, as Docker reports it. */
  size = 0;
  /**
   * Directories (relative to the root; "" is the root) known to be real
   * directories, not symlinks, so their parents need no lstat again.
   * Invariant: a directory is in the set only if all its ancestors are.
   */
  private readonly realDirs = new Set<string>([""]);
  /** Directory times are set at the end: creating entries inside a directory changes its mtime. */
  private readonly dirTimes = new Map<string, Times>();
  /** Only root may create device nodes and give files away to other owners. */
  private readonly privileged = process.getuid?.() === 0;

  constructor(
    private readonly root: string,
    private readonly onEntry?: (name: string, type: string) => void,
  ) {}

  async entry(header: EntryHeader, data: AsyncIterable<Buffer>): Promise<void> {
    const name = header.name;
    try {
      await this.apply(name, header, data);
    } catch (err) {
      // Our own MiniboxErrors and the tar parser's errors pass through; a
      // failing syscall is reported with the entry it was working on.
      if (isSyscallError(err)) {
        throw new MiniboxError(`could not unpack layer entry ${q(name)}: ${errorMessage(err)}`);
      }
      throw err;
    }
  }

  /** Sets the directory times that writing their children kept changing. */
  finish(): void {
    for (const [rel, times] of this.dirTimes) {
      try {
        fs.lutimesSync(this.full(rel), times.atime, times.mtime);
      } catch (err) {
        throw new MiniboxError(
          `could not set the times of layer directory ${q(rel)}: ${errorMessage(err)}`,
        );
      }
    }
  }

  private async apply(name: string, header: EntryHeader, data: AsyncIterable<Buffer>) {
    const rel = layerPath(name);
    if (rel === undefined)
      throw new UnsafeLayerError(`layer entry ${q(name)} escapes the layer directory`);
    const kind = whiteoutKind(rel);
    const type = header.type ?? "unknown";
    this.onEntry?.(name, kind ?? type);

    if (kind === undefined && (type === "file" || type === "contiguous-file")) {
      if (rel === "") throw new UnsafeLayerError(`layer entry ${q(name)} replaces the layer root`);
      await this.writeFile(rel, name, header, data);
      return;
    }
    // Every other entry should have no content, but tar-stream stalls until
    // an entry's content has been read, so read it whatever it holds. An
    // entry without content (size 0, or a directory, whose content tar-stream
    // skips itself) is not attached to the parser and needs no read: iterating
    // its empty stream cost ~0.1 ms per entry, tens of ms on busybox's layer
    // of 268 symlinks (CPU profile of a pull, cold JIT).
    if (hasContent(header)) await drain(data);

    if (kind === "aufs-metadata") return;
    if (kind === "opaque") return this.markOpaque(rel, name);
    if (kind === "whiteout") return this.whiteout(rel, name, header);
    if (rel === "") {
      // Like Docker, the root entry ("./") is skipped: its mode (0700 in
      // Alpine's minirootfs) must not make the container's / unreadable.
      if (type === "directory") return;
      throw new UnsafeLayerError(`layer entry ${q(name)} replaces the layer root`);
    }
    switch (type) {
      case "directory":
        return this.makeDirectory(rel, name, header);
      case "symlink":
        return this.makeSymlink(rel, name, header);
      case "link":
        return this.makeHardLink(rel, name, header);
      case "character-device":
      case "block-device":
      case "fifo":
        return this.makeNode(rel, name, header, type);
      default:
        throw new MiniboxError(`layer entry ${q(name)} has an unsupported tar type (${type})`);
    }
  }

  private async writeFile(
    rel: string,
    name: string,
    header: EntryHeader,
    data: AsyncIterable<Buffer>,
  ) {
    this.ensureParent(rel, name, true);
    const full = this.full(rel);
    const fd = this.createReplacing(rel, () => fs.openSync(full, CREATE_FILE, 0o600));
    try {
      if (hasContent(header)) for await (const chunk of data) writeAll(fd, chunk);
      const { uid, gid } = ownerOf(header);
      if (this.privileged) fs.fchownSync(fd, uid, gid);
      // After chown, which clears setuid/setgid; explicit, because open()'s
      // mode is filtered by the process umask.
      fs.fchmodSync(fd, modeOf(header, 0o644));
      // After chown too: chown also drops a file capability (security.capability).
      this.setXattrs(full, header);
      const times = timesOf(header);
      fs.futimesSync(fd, times.atime, times.mtime);
    } finally {
      fs.closeSync(fd);
    }
    this.size += header.size ?? 0;
  }

  private makeDirectory(rel: string, name: string, header: EntryHeader): void {
    this.ensureParent(rel, name, true);
    const full = this.full(rel);
    try {
      fs.mkdirSync(full, 0o700);
    } catch (err) {
      if (!isExists(err)) throw err;
      // A directory entry for an existing directory (its children came
      // first) only updates its metadata; anything else there is replaced.
      if (!fs.lstatSync(full).isDirectory()) {
        this.remove(rel);
        fs.mkdirSync(full, 0o700);
      }
    }
    this.realDirs.add(rel);
    this.setOwnerAndMode(full, header, 0o755);
    this.setXattrs(full, header);
    this.dirTimes.set(rel, timesOf(header));
  }

  private makeSymlink(rel: string, name: string, header: EntryHeader): void {
    this.ensureParent(rel, name, true);
    const full = this.full(rel);
    // The target is stored as-is and never followed here: it may point
    // anywhere, because it is resolved inside the container's root at run time.
    this.createReplacing(rel, () => fs.symlinkSync(header.linkname ?? "", full));
    const { uid, gid } = ownerOf(header);
    if (this.privileged) fs.lchownSync(full, uid, gid);
    this.setXattrs(full, header);
    const times = timesOf(header);
    fs.lutimesSync(full, times.atime, times.mtime);
  }

  /**
   * A hard link's target is an earlier entry of this layer. An absolute
   * linkname is relative to the layer root, like an entry name, and every
   * directory on the way to the target must be a real directory of the layer.
   * The link shares the target's inode, so it takes no metadata of its own.
   */
  private makeHardLink(rel: string, name: string, header: EntryHeader): void {
    const linkname = header.linkname ?? "";
    const target = layerPath(linkname);
    if (target === undefined) {
      throw new UnsafeLayerError(
        `layer entry ${q(name)} is a hard link to ${q(linkname)}, outside the layer directory`,
      );
    }
    if (target === rel) return; // a link to itself: nothing to do
    this.ensureParent(target, name, false);
    this.ensureParent(rel, name, true);
    const targetFull = this.full(target);
    if (fs.lstatSync(targetFull, { throwIfNoEntry: false }) === undefined) {
      throw new MiniboxError(
        `layer entry ${q(name)} is a hard link to ${q(linkname)}, which is not in the layer`,
      );
    }
    // link(2) on Linux does not follow a symlink target: linking to a symlink
    // makes another symlink, which is as harmless as the first.
    this.createReplacing(rel, () => fs.linkSync(targetFull, this.full(rel)));
  }

  /** Character and block devices need root: without it they are skipped, without error. */
  private makeNode(rel: string, name: string, header: EntryHeader, type: string): void {
    if (type !== "fifo" && !this.privileged) return;
    const fileType = type === "fifo" ? S_IFIFO : type === "block-device" ? S_IFBLK : S_IFCHR;
    this.ensureParent(rel, name, true);
    const full = this.full(rel);
    const device = [header.devmajor ?? 0, header.devminor ?? 0] as const;
    this.createReplacing(rel, () => mknod(full, fileType | 0o600, ...device));
    this.setOwnerAndMode(full, header, 0o644);
    this.setXattrs(full, header);
    const times = timesOf(header);
    fs.utimesSync(full, times.atime, times.mtime);
  }

  /** `dir/.wh.NAME`: hide NAME of the lower layers with a 0/0 character device. */
  private whiteout(rel: string, name: string, header: EntryHeader): void {
    const slash = rel.lastIndexOf("/");
    const hidden = rel.slice(slash + 1 + WHITEOUT_PREFIX.length);
    if (hidden === "" || hidden === "." || hidden === "..") {
      throw new UnsafeLayerError(`layer entry ${q(name)} is a whiteout for an invalid name`);
    }
    const target = slash < 0 ? hidden : `${rel.slice(0, slash)}/${hidden}`;
    this.ensureParent(target, name, true);
    // Whatever this layer put there before is hidden too.
    this.remove(target);
    const full = this.full(target);
    mknod(full, S_IFCHR, 0, 0);
    const { uid, gid } = ownerOf(header);
    if (this.privileged) fs.lchownSync(full, uid, gid);
  }

  /** `dir/.wh..wh..opq`: the lower layers' contents of dir are hidden; this layer's stay. */
  private markOpaque(rel: string, name: string): void {
    this.ensureParent(rel, name, true);
    lsetxattr(this.full(parentOf(rel)), OPAQUE_XATTR, Buffer.from("y"));
  }

  /**
   * Makes sure every directory above `rel` is a real directory of the layer,
   * never a symlink: this is what stops `evil -> /etc` followed by
   * `evil/passwd`. Missing directories are created (root-owned, 0755, like
   * Docker) when `create` is set; otherwise they are an error.
   */
  private ensureParent(rel: string, name: string, create: boolean): void {
    const parent = parentOf(rel);
    if (this.realDirs.has(parent)) return; // the common case: no syscall at all
    let dir = "";
    for (const part of parent.split("/")) {
      dir = dir === "" ? part : `${dir}/${part}`;
      if (!this.realDirs.has(dir)) this.checkDirectory(dir, name, create);
    }
  }

  private checkDirectory(dir: string, name: string, create: boolean): void {
    const full = this.full(dir);
    const stat = fs.lstatSync(full, { throwIfNoEntry: false });
    if (stat === undefined) {
      if (!create)
        throw new MiniboxError(
          `layer entry ${q(name)} refers to ${q(dir)}, which is not in the layer`,
        );
      fs.mkdirSync(full);
      fs.chmodSync(full, 0o755); // exactly 0755, whatever the umask
    } else if (stat.isSymbolicLink()) {
      throw new UnsafeLayerError(`layer entry ${q(name)} goes through the symlink ${q(dir)}`);
    } else if (!stat.isDirectory()) {
      throw new MiniboxError(
        `layer entry ${q(name)} needs ${q(dir)} to be a directory, but it is not`,
      );
    }
    this.realDirs.add(dir);
  }

  /**
   * Runs `create`; if something is already at the path, removes it and runs
   * `create` again: like Docker, a later entry replaces an earlier one.
   */
  private createReplacing<T>(rel: string, create: () => T): T {
    try {
      return create();
    } catch (err) {
      if (!isExists(err)) throw err;
    }
    this.remove(rel);
    return create();
  }

  /** rm -rf inside the layer (symlinks are removed, never followed), and forget what it held. */
  private remove(rel: string): void {
    fs.rmSync(this.full(rel), { recursive: true, force: true });
    const prefix = `${rel}/`;
    for (const dir of this.realDirs) {
      if (dir === rel || dir.startsWith(prefix)) this.realDirs.delete(dir);
    }
    for (const dir of this.dirTimes.keys()) {
      if (dir === rel || dir.startsWith(prefix)) this.dirTimes.delete(dir);
    }
  }

  private setOwnerAndMode(full: string, header: EntryHeader, defaultMode: number): void {
    const { uid, gid } = ownerOf(header);
    if (this.privileged) fs.lchownSync(full, uid, gid);
    // chmod follows symlinks, but `full` was just made by us and is not one.
    fs.chmodSync(full, modeOf(header, defaultMode));
  }

  /**
   * Extended attributes from the PAX header. `trusted.overlay.*` is never
   * taken from a tar: overlayfs metadata (opaque, redirect, metacopy) may only
   * come from whiteout markers. Failures are errors, except EPERM/ENOTSUP for
   * `security.*` and `system.*`, which an LSM or the filesystem may refuse
   * (best effort, as Docker does).
   */
  private setXattrs(full: string, header: EntryHeader): void {
    if (!header.pax) return;
    for (const [key, value] of paxXattrs(header.pax)) {
      if (key.startsWith("trusted.overlay.")) continue;
      try {
        lsetxattr(full, key, value);
      } catch (err) {
        const bestEffort = key.startsWith("security.") || key.startsWith("system.");
        if (
          bestEffort &&
          err instanceof SysError &&
          (err.errno === EPERM || err.errno === ENOTSUP)
        ) {
          continue;
        }
        throw err;
      }
    }
  }

  private full(rel: string): string {
    return rel === "" ? this.root : `${this.root}/${rel}`;
  }
}

/**
 * The entry's path relative to the layer root ("" is the root itself), or
 * undefined if it leaves the root. Like Docker, a leading "/" is dropped (an
 * absolute name is relative to the layer root) and "a/../b" is just "b"; a
 * path that still starts with ".." once normalised escapes.
 */
function layerPath(name: string): string | undefined {
  const rel = path.posix.normalize(name.replace(/^\/+/, "")).replace(/\/+$/, "");
  if (rel === ".." || rel.startsWith("../")) return undefined;
  return rel === "." ? "" : rel;
}

function parentOf(rel: string): string {
  const slash = rel.lastIndexOf("/");
  return slash < 0 ? "" : rel.slice(0, slash);
}

/** Which kind of whiteout marker an entry is, if any. */
function whiteoutKind(rel: string): "opaque" | "whiteout" | "aufs-metadata" | undefined {
  if (!rel.includes(WHITEOUT_PREFIX)) return undefined; // the fast path
  const parts = rel.split("/");
  const base = parts[parts.length - 1];
  if (base === OPAQUE_MARKER) return "opaque";
  if (parts.some((part) => part.startsWith(AUFS_META_PREFIX))) return "aufs-metadata";
  if (base.startsWith(WHITEOUT_PREFIX)) return "whiteout";
  return undefined;
}

function ownerOf(header: EntryHeader): { uid: number; gid: number } {
  // PAX uid/gid hold ids too large for the octal header fields.
  return {
    uid: Number(header.pax?.uid ?? header.uid ?? 0),
    gid: Number(header.pax?.gid ?? header.gid ?? 0),
  };
}

function modeOf(header: EntryHeader, defaultMode: number): number {
  // Keep the permission bits with setuid/setgid/sticky; old tars also put the file type here.
  return (header.mode ?? defaultMode) & 0o7777;
}

/** mtime from PAX (sub-second) or the header; atime never earlier than mtime, like Docker. */
function timesOf(header: EntryHeader): Times {
  const mtime = paxTime(header.pax?.mtime) ?? (header.mtime?.getTime() ?? 0) / 1000;
  const atime = paxTime(header.pax?.atime);
  return { mtime, atime: atime !== undefined && atime > mtime ? atime : mtime };
}

function paxTime(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const seconds = Number.parseFloat(value);
  return Number.isFinite(seconds) ? seconds : undefined;
}

/**
 * The xattrs in PAX records. GNU tar and Go write `SCHILY.xattr.NAME=value`;
 * libarchive also writes `LIBARCHIVE.xattr.NAME=base64`, which wins because
 * it survives binary values. tar-stream decodes SCHILY values as UTF-8, so a
 * binary value that is not valid UTF-8 arrives damaged (U+FFFD): it is
 * skipped rather than written wrong.
 */
function paxXattrs(pax: Record<string, string>): Map<string, Buffer> {
  const xattrs = new Map<string, Buffer>();
  for (const [key, value] of Object.entries(pax)) {
    if (key.startsWith("SCHILY.xattr.") && !value.includes("\uFFFD")) {
      const name = key.slice("SCHILY.xattr.".length);
      if (!xattrs.has(name)) xattrs.set(name, Buffer.from(value, "utf8"));
    }
  }
  for (const [key, value] of Object.entries(pax)) {
    if (key.startsWith("LIBARCHIVE.xattr.")) {
      xattrs.set(
        decodeURIComponent(key.slice("LIBARCHIVE.xattr.".length)),
        Buffer.from(value, "base64"),
      );
    }
  }
  return xattrs;
}

/** A pipeline stage that feeds every byte passing through to `hash`. */
function hashed(hash: Hash) {
  return async function* (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      hash.update(chunk);
      yield chunk;
    }
  };
}

/** Whether tar-stream feeds this entry's stream from the archive (see Extract._consumeHeader). */
function hasContent(header: EntryHeader): boolean {
  return (header.size ?? 0) > 0 && header.type !== "directory";
}

async function drain(data: AsyncIterable<Buffer>): Promise<void> {
  for await (const _chunk of data) {
    // discarded
  }
}

function writeAll(fd: number, chunk: Buffer): void {
  let offset = 0;
  while (offset < chunk.length) offset += fs.writeSync(fd, chunk, offset);
}

/** Sorts a failure into the one line the user sees. */
function toUnpackError(err: unknown): MiniboxError {
  if (err instanceof MiniboxError) return err;
  // The tar parser's errors carry no code (zlib's are converted in decompress()).
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === undefined || code.startsWith("Z_")) return corruptLayer(err);
  return new MiniboxError(`could not read the layer: ${errorMessage(err)}`);
}

function isExists(err: unknown): boolean {
  if (err instanceof SysError) return err.errno === EEXIST;
  return (err as NodeJS.ErrnoException).code === "EEXIST";
}

function isSyscallError(err: unknown): boolean {
  return err instanceof SysError || typeof (err as NodeJS.ErrnoException)?.syscall === "string";
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Quotes an entry name for a message; JSON escaping keeps control characters off the terminal. */
function q(name: string): string {
  return JSON.stringify(name);
}
