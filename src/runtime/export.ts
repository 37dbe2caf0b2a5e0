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
import { closeSync, lstatSync } from "node:fs";
import type { Writable } from "node:stream";
import tar from "tar-stream";
import { MiniboxError } from "../errors.js";
import { imageLayerDirs, listImageTree, type TreeEntry } from "../image/image-tree.js";
import type { Store } from "../image/store.js";
import {
  addEntry,
  addFileEntryFromFd,
  HardLinks,
  statToHeader,
  streamTar,
  xattrRecords,
} from "../image/tar-out.js";
import { atFd, isPathChanged, openDirBeneath, openFileAt } from "../sys/beneath.js";
import { llistxattr, SysError } from "../sys/libc.js";
import { findContainer, readSpec } from "./lifecycle.js";
import { containerPaths } from "./rootfs.js";
import type { SpecIdMapping } from "./spec.js";

const ENOENT = 2;

/** What the kernel shows for an id outside the user namespace's map. */
const OVERFLOW_ID = 65534;

/**
 * A container with its runtime spec and its image's record: what reading its
 * filesystem as layers + upper directory needs (export, commit).
 */
export async function containerWithImage(store: Store, nameOrId: string) {
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
  return { container, spec, image };
}

export async function exportContainer(store: Store, nameOrId: string, out: Writable) {
  const { container, spec, image } = await containerWithImage(store, nameOrId);
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
      await writer.writeEntry(e, e.layerDir === paths.upper ? map : undefined);
    }
  };
  await streamTar(pack, write, out);
}

/** Host ids → container ids (the upper directory under a user namespace). */
export type IdMap = { uid: SpecIdMapping[]; gid: SpecIdMapping[] };

export class MergedTreeWriter {
  private readonly links = new HardLinks();

  constructor(private readonly pack: tar.Pack) {}

  /**
   * The entry as it is now, reached again under its layer directory without
   * following links (a running container may have swapped a directory on
   * its path for a symlink to the host since it was listed: CVE-2018-15664).
   * An entry gone or changed meanwhile is left out, as tar does with a file
   * removed while it runs. Whether it was written.
   */
  async writeEntry(entry: TreeEntry, map?: IdMap, name = entry.path): Promise<boolean> {
    const rel = entry.path;
    const slash = rel.lastIndexOf("/");
    let dirFd: number;
    try {
      dirFd = openDirBeneath(entry.layerDir, slash < 0 ? "" : rel.slice(0, slash));
    } catch (err) {
      if (isPathChanged(err)) return false;
      throw err;
    }
    try {
      return await this.writeAt(name, dirFd, rel.slice(slash + 1), map);
    } finally {
      closeSync(dirFd);
    }
  }

  private async writeAt(rel: string, dirFd: number, name: string, map?: IdMap): Promise<boolean> {
    const found = await this.headerAt(rel, dirFd, name, map);
    if (!found) return false;
    const { header, stat } = found;
    const first = this.links.earlierName(rel, stat);
    if (first !== undefined) {
      await addEntry(this.pack, { ...header, type: "link", linkname: first });
      return true;
    }
    if (!stat.isFile()) {
      await addEntry(this.pack, header);
      return true;
    }
    const fd = openFileAt(dirFd, name, stat);
    if (fd === undefined) return false; // replaced since the lstat
    try {
      await addFileEntryFromFd(this.pack, header, fd, stat.size);
      return true;
    } finally {
      closeSync(fd);
    }
  }

  /** The entry's header from its lstat, link target and xattrs; undefined when it changed meanwhile. */
  private async headerAt(rel: string, dirFd: number, name: string, map?: IdMap) {
    const at = atFd(dirFd, name);
    try {
      const stat = lstatSync(at, { throwIfNoEntry: false });
      if (!stat) return undefined;
      const meta = {
        uid: map ? toContainerId(stat.uid, map.uid) : stat.uid,
        gid: map ? toContainerId(stat.gid, map.gid) : stat.gid,
        mtime: Math.floor(stat.mtimeMs / 1000),
      };
      const header = await statToHeader(rel, at, stat, meta);
      if (header === null) return undefined;
      // user.* travels; overlayfs' trusted.* bookkeeping and security.* (host policy) do not.
      const xattrs = stat.isSymbolicLink() ? undefined : xattrRecords(at, llistxattr(at), true);
      if (xattrs) header.pax = { ...header.pax, ...xattrs };
      return { header, stat };
    } catch (err) {
      if (vanished(err)) return undefined;
      throw err;
    }
  }
}

/**
 * Whether a call failed because the entry changed after its lstat (removed,
 * or no longer a symlink for readlink): left out, like an entry gone before
 * it was listed.
 */
function vanished(err: unknown): boolean {
  if (err instanceof SysError) return err.errno === ENOENT;
  return isPathChanged(err) || (err as NodeJS.ErrnoException)?.code === "EINVAL";
}

/** An id as the container sees it; ids outside the map show as the overflow id, as in the kernel. */
export function toContainerId(hostId: number, map: SpecIdMapping[]): number {
  for (const m of map) {
    if (hostId >= m.hostID && hostId < m.hostID + m.size) return hostId - m.hostID + m.containerID;
  }
  return OVERFLOW_ID;
}
