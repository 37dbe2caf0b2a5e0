/**
 * `export CONTAINER`: the container's filesystem as one tar — what `ls /`
 * shows inside it, i.e. the image's layers with the container's changes on
 * top — so that `import` makes an image of it.
 *
 * Nothing is mounted. A stopped container has no rootfs mount, and a running
 * one's overlay lives in its monitor's private mount namespace; so the merged
 * view is composed here by overlayfs' own rules, from the directories it
 * would stack (the upper directory first, then the layers, top to bottom):
 *  - a name is taken from the topmost directory that has it;
 *  - a character device 0/0 there (a whiteout) means it was deleted;
 *  - a directory is merged with the same directory below it, unless it is
 *    opaque (`trusted.overlay.opaque=y`) or the one below is not a directory.
 *
 * Owners come out as the container sees them: the upper directory holds host
 * ids shifted into the container's user-namespace range (subtracted here),
 * while the store's layers already hold the container's own ids.
 */
import fs from "node:fs";
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { MiniboxError } from "../errors.js";
import type { Store } from "../image/store.js";
import { lgetxattr, llistxattr } from "../sys/libc.js";
import { findContainer, readSpec } from "./lifecycle.js";
import { containerPaths } from "./rootfs.js";
import type { SpecIdMapping } from "./spec.js";

/** One directory overlayfs would stack, and how to read owners in it. */
interface Source {
  root: string;
  /** Host ids → container ids (the upper directory under a user namespace). */
  map?: { uid: SpecIdMapping[]; gid: SpecIdMapping[] };
}

type Header = Parameters<tar.Pack["entry"]>[0] & { pax?: Record<string, string> };

const { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO } = fs.constants;
const OPAQUE_XATTR = "trusted.overlay.opaque";
/** What the kernel shows for an id outside the user namespace's map. */
const OVERFLOW_ID = 65534;
const MAX_OCTAL_ID = 0o7777777;
const EMPTY = Buffer.alloc(0);

export async function exportContainer(store: Store, nameOrId: string, out: Writable) {
  const container = await findContainer(store.root, nameOrId);
  const spec = await readSpec(store.root, container.id).catch(() => {
    throw new MiniboxError(`container ${container.name} has no runtime spec; it was never created`);
  });
  const image = (await store.readIndex()).images[container.imageId];
  if (!image) {
    throw new MiniboxError(
      `the image of container ${container.name} (${container.imageId}) is no longer in the store`,
    );
  }
  const paths = containerPaths(store.root, container.id);
  const uidMap = spec.linux.uidMappings;
  const gidMap = spec.linux.gidMappings;
  const sources: Source[] = [
    {
      root: paths.upper,
      map: uidMap?.length && gidMap?.length ? { uid: uidMap, gid: gidMap } : undefined,
    },
    ...image.layers.map((l) => ({ root: store.layerDiffDir(l.chainId) })).reverse(),
  ];
  const pack = tar.pack();
  const writer = new MergedTreeWriter(pack);
  const producing = writer.writeDir("", sources).then(
    () => pack.finalize(),
    (err: unknown) => {
      pack.destroy(err as Error);
      throw err;
    },
  );
  const consuming = pipeline(pack as unknown as NodeJS.ReadableStream, out);
  try {
    await Promise.all([producing, consuming]);
  } catch (err) {
    pack.destroy();
    await Promise.allSettled([producing, consuming]);
    throw err;
  }
}

/** The topmost entry for a name, and the source it is in. */
interface Found {
  index: number;
  full: string;
  stat: fs.Stats;
}

class MergedTreeWriter {
  /** "dev:ino" → first tar name written for that inode, for hard links. */
  private readonly inodes = new Map<string, string>();

  constructor(private readonly pack: tar.Pack) {}

  /** Writes the children of directory `rel`, which the given sources (topmost first) make up. */
  async writeDir(rel: string, sources: Source[]): Promise<void> {
    const found = new Map<string, Found>();
    const order: string[] = [];
    for (const [index, source] of sources.entries()) {
      const dir = rel === "" ? source.root : `${source.root}/${rel}`;
      for (const name of await readdirOrNone(dir)) {
        if (found.has(name)) continue;
        const full = `${dir}/${name}`;
        const stat = await fs.promises.lstat(full).catch(() => undefined);
        if (!stat) continue; // removed meanwhile (a running container)
        found.set(name, { index, full, stat });
        order.push(name);
      }
    }
    // Sorted by bytes, as tar(1) with --sort=name: the same tree gives the same tar.
    order.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of order) {
      const entry = found.get(name) as Found;
      if (isWhiteout(entry.stat)) continue;
      const childRel = rel === "" ? name : `${rel}/${name}`;
      await this.writeEntry(childRel, entry, sources[entry.index] as Source);
      if (entry.stat.isDirectory()) {
        await this.writeDir(childRel, this.dirSources(childRel, entry, sources));
      }
    }
  }

  /** The directories that make up a merged directory: overlayfs' lookup rule. */
  private dirSources(rel: string, top: Found, sources: Source[]): Source[] {
    const out = [sources[top.index] as Source];
    if (isOpaque(top.full)) return out;
    for (let i = top.index + 1; i < sources.length; i++) {
      const source = sources[i] as Source;
      const full = `${source.root}/${rel}`;
      const stat = fs.lstatSync(full, { throwIfNoEntry: false });
      if (!stat) continue;
      if (!stat.isDirectory()) break; // a file or whiteout below ends the merge
      out.push(source);
      if (isOpaque(full)) break;
    }
    return out;
  }

  private async writeEntry(rel: string, entry: Found, source: Source): Promise<void> {
    const { stat, full } = entry;
    const header = this.header(rel, stat, source);
    const type = stat.mode & S_IFMT;
    if (type !== S_IFDIR && stat.nlink > 1) {
      const key = `${stat.dev}:${stat.ino}`;
      const first = this.inodes.get(key);
      if (first !== undefined) return this.emit({ ...header, type: "link", linkname: first });
      this.inodes.set(key, rel);
    }
    switch (type) {
      case S_IFDIR:
        return this.emit({ ...header, name: `${rel}/`, type: "directory" });
      case S_IFREG:
        return this.emitFile(header, full, stat.size);
      case S_IFLNK:
        return this.emit({
          ...header,
          type: "symlink",
          linkname: await fs.promises.readlink(full),
        });
      case S_IFCHR:
      case S_IFBLK:
        return this.emit({
          ...header,
          type: type === S_IFCHR ? "character-device" : "block-device",
          devmajor: Math.floor(stat.rdev / 256) & 0xfff,
          devminor: (stat.rdev & 0xff) | ((stat.rdev >> 12) & 0xfff00),
        });
      case S_IFIFO:
        return this.emit({ ...header, type: "fifo" });
      default:
        return; // sockets belong to the process that bound them; tar(1) skips them too
    }
  }

  private header(rel: string, stat: fs.Stats, source: Source): Header {
    const uid = source.map ? toContainerId(stat.uid, source.map.uid) : stat.uid;
    const gid = source.map ? toContainerId(stat.gid, source.map.gid) : stat.gid;
    const header: Header = {
      name: rel,
      mode: stat.mode & 0o7777,
      uid: Math.min(uid, MAX_OCTAL_ID),
      gid: Math.min(gid, MAX_OCTAL_ID),
      mtime: new Date(Math.floor(stat.mtimeMs / 1000) * 1000),
    };
    const pax: Record<string, string> = {};
    // ids beyond the header's 7 octal digits go in PAX records.
    if (uid > MAX_OCTAL_ID || gid > MAX_OCTAL_ID) Object.assign(pax, { uid, gid });
    if (!stat.isSymbolicLink()) {
      for (const name of llistxattr(`${source.root}/${rel}`).sort()) {
        // user.* travels; overlayfs' trusted.* bookkeeping and security.* (host policy) do not.
        if (!name.startsWith("user.")) continue;
        const value = lgetxattr(`${source.root}/${rel}`, name);
        if (value !== undefined)
          pax[`LIBARCHIVE.xattr.${encodeURIComponent(name)}`] = value.toString("base64");
      }
    }
    if (Object.keys(pax).length) header.pax = pax;
    return header;
  }

  private emit(header: Header): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pack.entry(header, EMPTY, (err) => (err ? reject(err) : resolve()));
    });
  }

  private async emitFile(header: Header, full: string, size: number): Promise<void> {
    // O_NOFOLLOW: never read through a symlink swapped in since lstat.
    const handle = await fs.promises.open(full, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      await new Promise<void>((resolve, reject) => {
        const sink = this.pack.entry({ ...header, type: "file", size }, (err) =>
          err ? reject(err) : resolve(),
        );
        pipeline(
          handle.createReadStream({ autoClose: false }),
          sink as unknown as NodeJS.WritableStream,
        ).catch(reject);
      });
    } finally {
      await handle.close();
    }
  }
}

/** An id as the container sees it; ids outside the map show as the overflow id, as in the kernel. */
export function toContainerId(hostId: number, map: SpecIdMapping[]): number {
  for (const m of map) {
    if (hostId >= m.hostID && hostId < m.hostID + m.size) return hostId - m.hostID + m.containerID;
  }
  return OVERFLOW_ID;
}

function isWhiteout(stat: fs.Stats): boolean {
  return (stat.mode & S_IFMT) === S_IFCHR && stat.rdev === 0;
}

function isOpaque(dir: string): boolean {
  try {
    return lgetxattr(dir, OPAQUE_XATTR)?.toString() === "y";
  } catch {
    return false;
  }
}

async function readdirOrNone(dir: string): Promise<string[]> {
  try {
    return await fs.promises.readdir(dir);
  } catch {
    return [];
  }
}
