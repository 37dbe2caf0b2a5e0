/**
 * Writing tar streams with tar-stream: what `save`, `export` and the build's
 * layer writer (src/build/diff.ts) share. Each decides which entries to
 * write; these helpers turn a file's lstat into its header and put entries
 * in the stream, in order, with backpressure.
 */
import fs from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type tar from "tar-stream";
import { MiniboxError } from "../errors.js";
import { splitDev } from "../sys/devnum.js";
import { lgetxattr } from "../sys/libc.js";

export type TarHeader = Parameters<tar.Pack["entry"]>[0] & { pax?: Record<string, string> };

/** What may follow the tar in the pipeline: transforms (streams or async generators), a destination. */
type PipelineStage =
  | NodeJS.ReadWriteStream
  | NodeJS.WritableStream
  | ((source: AsyncIterable<Buffer>) => AsyncIterable<Buffer>);

const EMPTY = Buffer.alloc(0);

/** An entry with no body (directory, link, device) or a small in-memory one. */
export function addEntry(pack: tar.Pack, header: TarHeader, body: Buffer = EMPTY): Promise<void> {
  return new Promise((resolve, reject) => {
    // A buffer (even empty) ends the entry at once: a "file" entry given none
    // would wait for content to be written to it.
    pack.entry(header, body, (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * A regular file, streamed from disk. The header needs the size up front; if
 * the file changed size since it was measured, tar-stream fails the entry
 * rather than writing a corrupt tar.
 */
export async function addFileEntry(
  pack: tar.Pack,
  header: TarHeader,
  path: string,
  size: number,
): Promise<void> {
  // O_NOFOLLOW: never read through a symlink swapped in since lstat.
  const handle = await fs.promises.open(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    await addFileEntryFromFd(pack, header, handle.fd, size);
  } finally {
    await handle.close();
  }
}

/**
 * A regular file already open (the caller checked it is the file it
 * listed), streamed; `fd` stays open. Exactly `size` bytes go in, whatever
 * a running container does to the file meanwhile: a file that grew is cut,
 * one that shrank is padded with zeros (as GNU tar does), so the tar stays
 * well-formed.
 */
export async function addFileEntryFromFd(
  pack: tar.Pack,
  header: TarHeader,
  fd: number,
  size: number,
): Promise<void> {
  if (size === 0) return addEntry(pack, { ...header, type: "file", size });
  await new Promise<void>((resolve, reject) => {
    const sink = pack.entry({ ...header, type: "file", size }, (err) =>
      err ? reject(err) : resolve(),
    );
    pipeline(Readable.from(exactly(fd, size)), sink as unknown as NodeJS.WritableStream).catch(
      reject,
    );
  });
}

const CHUNK = 64 * 1024;

/** `size` bytes of the file from offset 0: its own, then zeros if it ends early. */
async function* exactly(fd: number, size: number): AsyncGenerator<Buffer> {
  let offset = 0;
  while (offset < size) {
    const buf = Buffer.alloc(Math.min(CHUNK, size - offset));
    const { bytesRead } = await readAt(fd, buf, offset);
    if (bytesRead === 0) {
      yield Buffer.alloc(size - offset);
      return;
    }
    offset += bytesRead;
    yield buf.subarray(0, bytesRead);
  }
}

function readAt(fd: number, buf: Buffer, position: number) {
  return new Promise<{ bytesRead: number }>((resolve, reject) =>
    fs.read(fd, buf, 0, buf.length, position, (err, bytesRead) =>
      err ? reject(err) : resolve({ bytesRead }),
    ),
  );
}

/**
 * Run `produce` (which adds the entries) while the tar flows through
 * `sinks` (transforms, then the destination). On any failure both sides are
 * stopped before the error is thrown, so nothing writes afterwards.
 */
export async function streamTar(
  pack: tar.Pack,
  produce: () => Promise<void>,
  ...sinks: PipelineStage[]
): Promise<void> {
  const producing = produce().then(
    () => pack.finalize(),
    (err: unknown) => {
      pack.destroy(err as Error);
      throw err;
    },
  );
  // (tar-stream's streams are streamx streams, which pipeline() accepts but
  // whose types do not name Node's stream interfaces: hence the cast.)
  const consuming = (pipeline as (...streams: unknown[]) => Promise<void>)(pack, ...sinks);
  try {
    await Promise.all([producing, consuming]);
  } catch (err) {
    pack.destroy();
    await Promise.allSettled([producing, consuming]);
    throw err;
  }
}

/**
 * The largest id the header's 7 octal digits hold; larger ids go in PAX
 * records (tar-stream would otherwise silently write 7777777).
 */
const MAX_OCTAL_ID = 0o7777777;

const { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK } = fs.constants;

/** What the caller decides about an entry, rather than the inode: the owner it records and its time. */
export interface EntryMeta {
  uid: number;
  gid: number;
  /** Whole seconds since the epoch. */
  mtime: number;
}

/** uid/gid header fields, with PAX records for ids beyond the octal fields. */
export function ownerFields(uid: number, gid: number): TarHeader {
  const header: TarHeader = {
    name: "",
    uid: Math.min(uid, MAX_OCTAL_ID),
    gid: Math.min(gid, MAX_OCTAL_ID),
  };
  if (uid > MAX_OCTAL_ID || gid > MAX_OCTAL_ID) header.pax = { uid: String(uid), gid: String(gid) };
  return header;
}

/**
 * The header of one filesystem object from its lstat (number or bigint):
 * type, permission bits, link target, device numbers; owner and time as
 * `meta` says. A directory's name gets its trailing "/". null for a socket,
 * which only means something to the process that bound it (Docker and
 * tar(1) skip them too).
 */
export async function statToHeader(
  name: string,
  path: string,
  stat: fs.Stats | fs.BigIntStats,
  meta: EntryMeta,
): Promise<TarHeader | null> {
  const type = Number(stat.mode) & S_IFMT;
  const header: TarHeader = {
    ...ownerFields(meta.uid, meta.gid),
    name,
    mode: Number(stat.mode) & 0o7777,
    mtime: new Date(meta.mtime * 1000),
  };
  switch (type) {
    case S_IFDIR:
      return { ...header, name: `${name}/`, type: "directory" };
    case S_IFREG:
      return { ...header, type: "file", size: Number(stat.size) };
    case S_IFLNK:
      return { ...header, type: "symlink", linkname: await fs.promises.readlink(path) };
    case S_IFCHR:
      return { ...header, type: "character-device", ...splitDev(stat.rdev) };
    case S_IFBLK:
      return { ...header, type: "block-device", ...splitDev(stat.rdev) };
    case S_IFIFO:
      return { ...header, type: "fifo" };
    case S_IFSOCK:
      return null;
    default:
      throw new MiniboxError(`cannot store ${JSON.stringify(name)} in a tar: unknown file type`);
  }
}

/**
 * Remembers the first name written for each inode with several names, so
 * that the later names become hard-link entries to it.
 */
export class HardLinks {
  /** "dev:ino" → the first name. */
  private readonly names = new Map<string, string>();

  /** The name an earlier entry gave this inode; undefined (and `name` remembered) if none did. */
  earlierName(name: string, stat: fs.Stats | fs.BigIntStats): string | undefined {
    // Directories cannot be hard linked; their nlink counts subdirectories.
    if (stat.isDirectory() || Number(stat.nlink) < 2) return undefined;
    const key = `${stat.dev}:${stat.ino}`;
    const first = this.names.get(key);
    if (first === undefined) this.names.set(key, name);
    return first;
  }
}

/**
 * user.* xattrs as PAX records, names sorted (for reproducible tars).
 * A value that is valid UTF-8 goes as `SCHILY.xattr.NAME` (GNU tar's and
 * Go's record) unless `base64Only`; any other as
 * `LIBARCHIVE.xattr.NAME=base64`, which survives binary values. overlayfs'
 * trusted.* bookkeeping and security.* (host policy) do not travel.
 */
export function xattrRecords(
  path: string,
  names: string[],
  base64Only = false,
): Record<string, string> | undefined {
  const pax: Record<string, string> = {};
  for (const name of [...names].sort()) {
    if (!name.startsWith("user.")) continue;
    const value = lgetxattr(path, name);
    if (value === undefined) continue; // removed since it was listed
    const text = value.toString("utf8");
    if (!base64Only && Buffer.from(text, "utf8").equals(value)) pax[`SCHILY.xattr.${name}`] = text;
    else pax[`LIBARCHIVE.xattr.${encodeURIComponent(name)}`] = value.toString("base64");
  }
  return Object.keys(pax).length > 0 ? pax : undefined;
}
