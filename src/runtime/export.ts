/**
 * `export CONTAINER`: the container's filesystem as one tar — what `ls /`
 * shows inside it, i.e. the image's layers with the container's changes on
 * top — so that `import` makes an image of it.
 *
 * Nothing is mounted. A stopped container has no rootfs mount, and a running
 * one's overlay lives in its monitor's private mount namespace; so the merged
 * view is composed by overlayfs' own rules (src/image/image-tree.ts) from the
 * directories it would stack: the image's layers with the upper directory on
 * top.
 *
 * Owners come out as the container sees them: the upper directory holds host
 * ids shifted into the container's user-namespace range (subtracted here),
 * while the store's layers already hold the container's own ids.
 */
import fs from "node:fs";
import type { Writable } from "node:stream";
import tar from "tar-stream";
import { MiniboxError } from "../errors.js";
import { imageLayerDirs, listImageTree } from "../image/image-tree.js";
import type { Store } from "../image/store.js";
import { addEntry, addFileEntry, streamTar } from "../image/tar-out.js";
import { lgetxattr, llistxattr } from "../sys/libc.js";
import { findContainer, readSpec } from "./lifecycle.js";
import { containerPaths } from "./rootfs.js";
import type { SpecIdMapping } from "./spec.js";

type Header = Parameters<tar.Pack["entry"]>[0] & { pax?: Record<string, string> };

const { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO } = fs.constants;
/** What the kernel shows for an id outside the user namespace's map. */
const OVERFLOW_ID = 65534;
const MAX_OCTAL_ID = 0o7777777;

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
  const map = uidMap?.length && gidMap?.length ? { uid: uidMap, gid: gidMap } : undefined;
  const entries = await listImageTree([...imageLayerDirs(store, image), { dir: paths.upper }], "");
  const pack = tar.pack();
  const writer = new MergedTreeWriter(pack);
  const write = async () => {
    for (const e of entries) {
      if (e.path === "") continue;
      const fromUpper = e.source.startsWith(`${paths.upper}/`);
      await writer.writeEntry(e.path, e.stat, e.source, fromUpper ? map : undefined);
    }
  };
  await streamTar(pack, write, out);
}

/** Host ids → container ids (the upper directory under a user namespace). */
type IdMap = { uid: SpecIdMapping[]; gid: SpecIdMapping[] };

class MergedTreeWriter {
  /** "dev:ino" → first tar name written for that inode, for hard links. */
  private readonly inodes = new Map<string, string>();

  constructor(private readonly pack: tar.Pack) {}

  async writeEntry(rel: string, stat: fs.Stats, full: string, map?: IdMap): Promise<void> {
    const header = this.header(rel, stat, full, map);
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

  private header(rel: string, stat: fs.Stats, full: string, map?: IdMap): Header {
    const uid = map ? toContainerId(stat.uid, map.uid) : stat.uid;
    const gid = map ? toContainerId(stat.gid, map.gid) : stat.gid;
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
      for (const name of llistxattr(full).sort()) {
        // user.* travels; overlayfs' trusted.* bookkeeping and security.* (host policy) do not.
        if (!name.startsWith("user.")) continue;
        const value = lgetxattr(full, name);
        if (value !== undefined)
          pax[`LIBARCHIVE.xattr.${encodeURIComponent(name)}`] = value.toString("base64");
      }
    }
    if (Object.keys(pax).length) header.pax = pax;
    return header;
  }

  private emit(header: Header): Promise<void> {
    return addEntry(this.pack, header);
  }

  private emitFile(header: Header, full: string, size: number): Promise<void> {
    return addFileEntry(this.pack, header, full, size);
  }
}

/** An id as the container sees it; ids outside the map show as the overflow id, as in the kernel. */
export function toContainerId(hostId: number, map: SpecIdMapping[]): number {
  for (const m of map) {
    if (hostId >= m.hostID && hostId < m.hostID + m.size) return hostId - m.hostID + m.containerID;
  }
  return OVERFLOW_ID;
}
