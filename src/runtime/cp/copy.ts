/**
 * `cp`: files between a container and the host, as `docker cp` copies them.
 *
 * Either way it is a tar stream: the source's entry named after its last
 * component (or "." for "SRC/.": its contents), unpacked into the
 * destination directory with that first name replaced by the one Docker's
 * rules give it:
 *   - destination is a directory: the source goes into it (its contents, for "/.");
 *   - destination is a file: a file source replaces it, a directory is refused;
 *   - destination is missing: the source is created under that name (its
 *     parent must exist; "name/" for a file source is refused).
 * `-` is that tar itself, on stdout (from a container) or stdin (into a
 * directory of one).
 *
 * Paths in the container are resolved inside it (container-fs.ts), and
 * everything there is read and written without following a link on the
 * way (export.ts MergedTreeWriter, unpack.ts).
 */
import fs from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { PassThrough, type Readable, type Writable } from "node:stream";
import tar from "tar-stream";
import { MiniboxError } from "../../errors.js";
import { type LayerDir, listImageTree } from "../../image/image-tree.js";
import type { Store } from "../../image/store.js";
import { streamTar } from "../../image/tar-out.js";
import { atFd, openDirAt } from "../../sys/beneath.js";
import { type IdMap, MergedTreeWriter } from "../export.js";
import { findContainer } from "../lifecycle.js";
import type { SpecIdMapping } from "../spec.js";
import {
  type ContainerFs,
  checkMounted,
  containerFs,
  type HostMount,
  lstatMerged,
  mountOf,
  notFound,
  resolveInContainer,
} from "./container-fs.js";
import { type UnpackTarget, unpackTar } from "./unpack.js";

export interface CpOptions {
  /** -a: keep the owners (the container's view of them) instead of the copier's / the container root's. */
  archive: boolean;
  /** -L: follow a symlink that SRC itself names. */
  followLink: boolean;
}

/** What is packed: the entries at and under `rel` in `layers`, named from `name`. */
interface Source {
  layers: LayerDir[];
  rel: string;
  name: string;
  isDir: boolean;
  /** For messages: the path as the user wrote it, and where. */
  label: string;
  /** Ids of entries in `mappedLayer` are host ids, shown as the container's. */
  map?: IdMap;
  mappedLayer?: string;
}

export async function copyFromContainer(
  store: Store,
  container: string,
  srcPath: string,
  dest: string,
  opts: CpOptions,
  stdout: Writable,
): Promise<void> {
  const cfs = await containerFs(store, await findContainer(store.root, container));
  const contentsOnly = /(^|\/)\.$/.test(srcPath);
  const follow = opts.followLink || srcPath.endsWith("/") || contentsOnly;
  const r = resolveInContainer(cfs, srcPath, follow);
  checkMounted(cfs, r.parts, srcPath);
  if (!r.found) throw notFound(srcPath, cfs.name);
  const isDir = r.found.stat.isDirectory();
  if ((srcPath.endsWith("/") || contentsOnly) && !isDir) {
    throw new MiniboxError(`${srcPath} in container ${cfs.name} is not a directory`);
  }
  const m = mountOf(cfs, r.parts);
  const src: Source = {
    ...(m
      ? { layers: [{ dir: m.source }], rel: r.parts.slice(m.dest.length).join("/") }
      : { layers: cfs.layers, rel: r.parts.join("/") }),
    name: contentsOnly || r.parts.length === 0 ? "." : (r.parts[r.parts.length - 1] as string),
    isDir,
    label: `${srcPath} in container ${cfs.name}`,
    map: m && !m.shifted ? undefined : cfs.map,
    mappedLayer: m ? m.source : cfs.mappedLayer,
  };
  if (dest === "-") return packTo(src, stdout);
  await pipeInto(src, hostTarget(src, dest, opts));
}

export async function copyToContainer(
  store: Store,
  srcPath: string,
  container: string,
  destPath: string,
  opts: CpOptions,
  stdin: Readable,
): Promise<void> {
  const cfs = await containerFs(store, await findContainer(store.root, container));
  const dest = resolveInContainer(cfs, destPath, true);
  checkMounted(cfs, dest.parts, destPath);
  /** Where `dir` (in the container) is written: the upper directory, or a mount's host directory. */
  const targetOf = (dir: string[]): UnpackTarget => {
    const m = mountOf(cfs, dir);
    if (m) return mountTarget(cfs, m, dir, destPath, opts.archive);
    ensureUpperDirs(cfs, dir);
    return {
      root: cfs.writable,
      dir,
      owner: containerOwner(cfs.map, opts.archive),
      creator: containerOwner(cfs.map, false)(0, 0),
      isUpper: cfs.isUpper,
      describe: (parts) => `/${parts.join("/")} in container ${cfs.name}`,
    };
  };
  if (srcPath === "-") {
    if (!dest.found) throw notFound(destPath, cfs.name);
    if (!dest.found.stat.isDirectory()) {
      throw new MiniboxError(
        `destination ${destPath} in container ${cfs.name} must be a directory`,
      );
    }
    return unpackTar(stdin, targetOf(dest.parts));
  }
  const src = hostSource(srcPath, opts.followLink);
  const { dir, rename } = placement(
    src,
    dest.parts,
    dest.found?.stat,
    destPath,
    (p) => `${p} in container ${cfs.name}`,
  );
  if (rename && mountOf(cfs, dest.parts)?.dest.length === dest.parts.length) {
    // A bind-mounted file: the mount point is the file, in no directory we could write into.
    throw new MiniboxError(
      `${destPath} in container ${cfs.name} is a bind-mounted file, reachable only while it runs`,
      "start the container first",
    );
  }
  await pipeInto(src, { ...targetOf(dir), rename });
}

/**
 * A stopped container's volume or bind mount as the destination: its host
 * directory, owners as the mount shows them (container ids for an idmapped
 * one, host ids for one bound as is under a user namespace).
 */
function mountTarget(
  cfs: ContainerFs,
  m: HostMount,
  dir: string[],
  destPath: string,
  archive: boolean,
): UnpackTarget {
  if (m.readOnly) {
    throw new MiniboxError(
      `${destPath} in container ${cfs.name} is in its read-only mount /${m.dest.join("/")}`,
    );
  }
  const map = m.shifted ? cfs.map : undefined;
  return {
    root: m.source,
    dir: dir.slice(m.dest.length),
    owner: containerOwner(map, archive),
    creator: containerOwner(map, false)(0, 0),
    isUpper: false,
    describe: (parts) => `/${[...m.dest, ...parts].join("/")} in container ${cfs.name}`,
  };
}

/** Docker's rules (see the top of this file): the directory to unpack into and the first name's replacement. */
function placement(
  src: Source,
  destParts: string[],
  destStat: fs.Stats | undefined,
  destPath: string,
  where: (p: string) => string,
): { dir: string[]; rename?: UnpackTarget["rename"] } {
  if (destStat?.isDirectory()) {
    return { dir: destParts, rename: src.name === "." ? { from: ".", to: [] } : undefined };
  }
  if (destStat && src.isDir)
    throw new MiniboxError(`cannot copy a directory to a file: ${where(destPath)} is a file`);
  if (!destStat && destPath.endsWith("/") && !src.isDir) {
    throw new MiniboxError(`no such directory: ${where(destPath)}`);
  }
  const last = destParts[destParts.length - 1];
  if (last === undefined) throw new MiniboxError(`cannot copy onto ${where(destPath)}`);
  return { dir: destParts.slice(0, -1), rename: { from: src.name, to: [last] } };
}

/** A host path as a source: the link itself unless -L (or a trailing "/"). */
function hostSource(path: string, followLink: boolean): Source {
  const contentsOnly = /(^|\/)\.$/.test(path);
  let abs = resolve(path);
  const st = (followLink || path.endsWith("/") || contentsOnly ? fs.statSync : fs.lstatSync)(abs, {
    throwIfNoEntry: false,
  });
  if (!st) throw new MiniboxError(`lstat ${abs}: no such file or directory`);
  if (contentsOnly && !st.isDirectory()) throw new MiniboxError(`${path} is not a directory`);
  if (st.isDirectory() || followLink) abs = fs.realpathSync(abs);
  if (contentsOnly || abs === "/")
    return { layers: [{ dir: abs }], rel: "", name: ".", isDir: true, label: path };
  return {
    layers: [{ dir: dirname(abs) }],
    rel: basename(abs),
    name: basename(abs),
    isDir: st.isDirectory(),
    label: path,
  };
}

/** A host path as the destination of a copy out of a container. */
function hostTarget(src: Source, dest: string, opts: CpOptions): UnpackTarget {
  const abs = resolve(dest);
  const st = fs.statSync(abs, { throwIfNoEntry: false });
  const parts = abs.split("/").filter(Boolean);
  const { dir, rename } = placement(src, parts, st, dest, (p) => p);
  const dirPath = `/${dir.join("/")}`;
  if (!fs.statSync(dirPath, { throwIfNoEntry: false })?.isDirectory()) {
    throw new MiniboxError(`no such directory: ${dirPath}`);
  }
  return {
    root: fs.realpathSync(dirPath), // the user's own path: its links are theirs
    dir: [],
    rename,
    owner: opts.archive ? (uid, gid) => [uid, gid] : () => undefined,
    isUpper: false,
    describe: (p) => `${dirPath}/${p.join("/")}`,
  };
}

async function packTo(src: Source, out: Writable): Promise<void> {
  const entries = await listImageTree(src.layers, src.rel);
  const pack = tar.pack();
  const writer = new MergedTreeWriter(pack);
  const write = async () => {
    for (const e of entries) {
      const below = src.rel === "" ? e.path : e.path.slice(src.rel.length + 1);
      const name = e.path === src.rel ? src.name : `${src.name}/${below}`;
      const map = e.layerDir === src.mappedLayer ? src.map : undefined;
      const written = await writer.writeEntry(e, map, name);
      // The source itself gone or swapped for a link while we read (CVE-2018-15664's race): refused, not an empty copy.
      if (!written && e.path === src.rel)
        throw new MiniboxError(`${src.label} changed while it was copied`);
    }
    if (entries.length === 0) throw new MiniboxError(`${src.label} changed while it was copied`);
  };
  await streamTar(pack, write, out);
}

async function pipeInto(src: Source, target: UnpackTarget): Promise<void> {
  const stream = new PassThrough();
  await Promise.all([packTo(src, stream), unpackTar(stream, target)]);
}

/** Owners of what goes into the container: its root unless -a, mapped to host ids. */
function containerOwner(map: IdMap | undefined, archive: boolean): UnpackTarget["owner"] {
  const host = (id: number, m?: SpecIdMapping[]) => (m ? toHostId(id, m) : id);
  return (uid, gid) =>
    archive ? [host(uid, map?.uid), host(gid, map?.gid)] : [host(0, map?.uid), host(0, map?.gid)];
}

/** A container id as the host stores it; one outside the map is refused, as the kernel refuses it. */
export function toHostId(id: number, map: SpecIdMapping[]): number {
  for (const m of map) {
    if (id >= m.containerID && id < m.containerID + m.size) return id - m.containerID + m.hostID;
  }
  throw new MiniboxError(`id ${id} has no mapping in the container's user namespace`);
}

/**
 * A stopped container's upper directory has only what the container
 * changed: the directories on the way to where we write are made there as
 * overlayfs' copy-up would (the merged view's mode and owner), so the
 * layers' copies merge under them.
 */
function ensureUpperDirs(cfs: ContainerFs, parts: string[]): void {
  if (!cfs.isUpper) return;
  let fd = fs.openSync(cfs.writable, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    for (let n = 1; n <= parts.length; n++) {
      const name = parts[n - 1] as string;
      if (!fs.lstatSync(atFd(fd, name), { throwIfNoEntry: false })) {
        const merged = lstatMerged(cfs.layers, parts.slice(0, n));
        if (!merged) throw new MiniboxError(`/${parts.slice(0, n).join("/")} vanished`);
        const { mode, uid, gid } = merged.stat;
        fs.mkdirSync(atFd(fd, name), mode & 0o7777);
        const shifted = merged.layer.dir === cfs.mappedLayer || !cfs.map;
        // The store's layers hold the container's own ids; the upper directory host ids.
        const hostUid = shifted ? uid : toHostId(uid, cfs.map?.uid ?? []);
        const hostGid = shifted ? gid : toHostId(gid, cfs.map?.gid ?? []);
        fs.lchownSync(atFd(fd, name), hostUid, hostGid);
        fs.chmodSync(atFd(fd, name), mode & 0o7777);
      }
      const next = openDirAt(fd, name);
      fs.closeSync(fd);
      fd = next;
    }
  } finally {
    fs.closeSync(fd);
  }
}
