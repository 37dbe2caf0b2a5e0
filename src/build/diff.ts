/**
 * Turning a container's overlayfs upper directory (everything one Dockerfile
 * RUN step changed) into an OCI layer: a gzip-compressed tar. This is the
 * reverse of src/image/layer.ts, which unpacks such a layer into a directory
 * overlayfs can stack.
 *
 * What has to be translated on the way out:
 *  - overlayfs whiteouts become OCI whiteouts: a 0/0 character device `X`
 *    (overlay's "X was deleted") becomes an empty file `.wh.X`, and a
 *    directory with the xattr `trusted.overlay.opaque=y` ("hide everything
 *    the lower layers had in here") gets an empty `.wh..wh..opq` inside it;
 *  - owners are shifted back: under a user namespace the container's root is
 *    some host uid N, but the layer must say 0 so that it means the same thing
 *    in any other container (or on another machine);
 *  - overlayfs' own bookkeeping (`trusted.overlay.*` xattrs) stays behind.
 *
 * The output must be reproducible: the same upper directory must give the
 * same digest every time, or the build cache and registries see a "new" layer
 * for nothing. So entries come in a fixed order (sorted names, depth first),
 * nothing host-specific (user names, atimes) is recorded, mtimes can be
 * clamped to SOURCE_DATE_EPOCH, and the gzip header carries no timestamp.
 *
 * One pass does everything: the tar bytes are hashed (the diffID), gzipped,
 * hashed again (the blob digest) and written, as they flow. Nothing is read
 * twice.
 */
import { createHash, type Hash } from "node:crypto";
import fs from "node:fs";
import { createGzip } from "node:zlib";
import tar from "tar-stream";
import { MiniboxError } from "../errors.js";
import {
  addEntry,
  addFileEntry,
  type EntryMeta,
  HardLinks,
  ownerFields,
  statToHeader,
  streamTar,
  type TarHeader,
  xattrRecords,
} from "../image/tar-out.js";
import { lgetxattr, llistxattr } from "../sys/libc.js";

export interface LayerBlob {
  /** "sha256:<hex>" of the gzip bytes: the blob digest a manifest refers to. */
  digest: string;
  /** "sha256:<hex>" of the uncompressed tar: the config's rootfs.diff_ids entry. */
  diffID: string;
  /** Where the gzip blob was written (the outPath given). */
  path: string;
  /** Blob size in bytes (of the gzip file). */
  size: number;
  /**
   * The upper directory held nothing at all. The blob is still written (a
   * valid, empty tar), but Docker records no layer for such a step, only a
   * history entry with `empty_layer: true`; the caller should do the same.
   */
  empty: boolean;
}

export interface DiffOptions {
  /** SOURCE_DATE_EPOCH: clamp every mtime to at most this (seconds), for reproducible layers. */
  sourceDateEpoch?: number;
  /**
   * Host uid/gid the container's root is mapped to, subtracted from every
   * owner (the layer must record 0 for the container's root).
   */
  idShift?: { uid: number; gid: number };
  /**
   * Paths (relative, as "etc/hosts") left out with everything under them:
   * `commit` of a running container cannot delete the mount points minibox
   * made in its upper directory, so it skips them instead.
   */
  skip?: ReadonlySet<string>;
}

/** One filesystem object of the upper directory, and where it goes in the tar. */
interface Item {
  /** Path relative to the upper directory, no leading or trailing slash: "etc/passwd". */
  rel: string;
  full: string;
  stat: fs.BigIntStats;
}

const WHITEOUT_PREFIX = ".wh.";
const OPAQUE_MARKER = ".wh..wh..opq";
const OPAQUE_XATTR = "trusted.overlay.opaque";
/**
 * With these, the upper directory is not self-contained: a renamed directory
 * (redirect_dir) or a file whose data is still in the lower layer (metacopy)
 * would need the lower layers to be turned into a tar. minibox mounts its
 * overlays without them; finding one means the mount was set up differently.
 */
const REDIRECT_XATTR = "trusted.overlay.redirect";
const METACOPY_XATTR = "trusted.overlay.metacopy";

const { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR } = fs.constants;

/**
 * Write `upperDir` as a gzip tar layer to `outPath` (created or truncated).
 * On failure `outPath` is removed and the promise rejects (a MiniboxError for
 * anything the upper directory holds that a layer cannot express).
 */
export async function writeLayer(
  upperDir: string,
  outPath: string,
  options: DiffOptions = {},
): Promise<LayerBlob> {
  const tarHash = createHash("sha256");
  const gzHash = createHash("sha256");
  const counter = { bytes: 0 };
  const writer = new TarWriter(options);

  // The producer (walking the directory, feeding entries to the packer) and
  // the consumer (hash → gzip → hash → file) run concurrently; the packer's
  // backpressure keeps at most a few chunks in memory. Node's zlib writes a
  // gzip header with mtime 0 and OS 3 (Unix) and no file name, unlike
  // gzip(1): nothing in it depends on when or where it ran.
  try {
    await streamTar(
      writer.pack,
      () => writer.writeTree(upperDir),
      hashed(tarHash),
      createGzip(),
      hashed(gzHash, counter),
      fs.createWriteStream(outPath),
    );
  } catch (err) {
    await fs.promises.rm(outPath, { force: true });
    throw err;
  }
  return {
    digest: `sha256:${gzHash.digest("hex")}`,
    diffID: `sha256:${tarHash.digest("hex")}`,
    path: outPath,
    size: counter.bytes,
    empty: writer.entries === 0,
  };
}

/** Walks the upper directory and turns each object into tar entries, in order. */
class TarWriter {
  readonly pack = tar.pack();
  /** Entries written (whiteout markers included): 0 means an empty layer. */
  entries = 0;
  private readonly links = new HardLinks();

  constructor(private readonly options: DiffOptions) {}

  async writeTree(root: string): Promise<void> {
    // The root itself gets no entry: it is the container's "/", whose
    // metadata belongs to the base image (layer.ts skips "./" as well).
    await this.writeChildren(root, "");
  }

  /**
   * Depth first, each directory's names sorted by their UTF-8 bytes (not by
   * locale, which differs between machines): a directory entry always comes
   * before its contents, and the order is the same on every run.
   */
  private async writeChildren(dirFull: string, dirRel: string): Promise<void> {
    const names = (await fs.promises.readdir(dirFull, { encoding: "buffer" }))
      .sort(Buffer.compare)
      .map((raw) => {
        const name = raw.toString("utf8");
        // tar-stream writes names as UTF-8 strings; a name that is not
        // valid UTF-8 would come out as a different name.
        if (!Buffer.from(name, "utf8").equals(raw)) {
          throw new MiniboxError(
            `cannot store ${q(`${dirRel}/${name}`)} in a layer: its name is not valid UTF-8`,
          );
        }
        return name;
      });
    for (const name of names) {
      const rel = dirRel === "" ? name : `${dirRel}/${name}`;
      if (this.options.skip?.has(rel)) continue;
      const full = `${dirFull}/${name}`;
      // lstat: a symlink is stored as a symlink, never followed.
      const stat = await fs.promises.lstat(full, { bigint: true });
      await this.writeItem({ rel, full, stat });
      if ((Number(stat.mode) & S_IFMT) === S_IFDIR) await this.writeChildren(full, rel);
    }
  }

  private async writeItem(item: Item): Promise<void> {
    const { rel, full, stat } = item;
    const type = Number(stat.mode) & S_IFMT;
    refuseWhiteoutName(rel);
    // A whiteout first, before the hard-link check: overlayfs makes all its
    // whiteouts hard links of one shared inode, and each must stay a whiteout.
    if (isWhiteout(stat)) return this.writeWhiteout(item);

    const xattrs = type === S_IFLNK ? [] : llistxattr(full);
    refuseOverlayLeftovers(rel, xattrs);
    const header = await statToHeader(rel, full, stat, this.meta(item));
    if (header === null) return;
    const pax = xattrRecords(full, xattrs);
    if (pax) header.pax = { ...header.pax, ...pax };

    const first = this.links.earlierName(rel, stat);
    if (first !== undefined) {
      // The link shares the first entry's inode, so it carries no metadata
      // of its own that matters; xattrs are dropped, like Docker does.
      delete header.pax;
      return this.emit({ ...header, type: "link", linkname: first });
    }
    if (type === S_IFREG) return this.emitFile(header, full, stat.size);
    await this.emit(header);
    const opaque = xattrs.includes(OPAQUE_XATTR) ? lgetxattr(full, OPAQUE_XATTR) : undefined;
    if (type === S_IFDIR && opaque?.toString() === "y") await this.writeOpaqueMarker(item);
  }

  /** overlayfs' "deleted" (a 0/0 character device) as OCI's: an empty file `.wh.NAME`. */
  private writeWhiteout(item: Item): Promise<void> {
    const slash = item.rel.lastIndexOf("/");
    const name = `${item.rel.slice(0, slash + 1)}${WHITEOUT_PREFIX}${item.rel.slice(slash + 1)}`;
    // Like Docker: an empty regular file, 0600, with the device's owner and time.
    return this.emit({ ...this.common(item), name, type: "file", mode: 0o600 });
  }

  /**
   * An opaque directory's marker, right after the directory, as Docker does,
   * with the directory's permissions, owner and time.
   */
  private writeOpaqueMarker(item: Item): Promise<void> {
    return this.emit({
      ...this.common(item),
      name: `${item.rel}/${OPAQUE_MARKER}`,
      type: "file",
      mode: Number(item.stat.mode) & 0o777,
    });
  }

  /** The metadata every entry takes from its inode: mode, owner, time. */
  private common(item: Item): TarHeader {
    const meta = this.meta(item);
    return {
      ...ownerFields(meta.uid, meta.gid),
      name: item.rel,
      mode: Number(item.stat.mode) & 0o7777,
      mtime: new Date(meta.mtime * 1000),
    };
  }

  /** The owner the layer records (unshifted) and the entry's time. */
  private meta(item: Item): EntryMeta {
    const { stat, rel } = item;
    // overlayfs makes whiteouts with the mounter's credentials (the host's
    // root), whoever deleted the file: their owner means nothing; record 0.
    const whiteout = isWhiteout(stat);
    const shift = this.options.idShift ?? { uid: 0, gid: 0 };
    const uid = whiteout ? 0 : unshift(Number(stat.uid), shift.uid, "uid", rel);
    const gid = whiteout ? 0 : unshift(Number(stat.gid), shift.gid, "gid", rel);
    // Whole seconds only, like Docker: sub-second times would need a PAX
    // record on every entry, and atime/ctime are left out altogether (they
    // change by merely reading or chowning, so they would break determinism).
    let mtime = Number(stat.mtimeNs / 1_000_000_000n);
    if (this.options.sourceDateEpoch !== undefined) {
      mtime = Math.min(mtime, this.options.sourceDateEpoch);
    }
    return { uid, gid, mtime: Math.max(mtime, 0) };
  }

  /** An entry without content. */
  private emit(header: TarHeader): Promise<void> {
    this.entries++;
    return addEntry(this.pack, header);
  }

  private emitFile(header: TarHeader, full: string, size: bigint): Promise<void> {
    this.entries++;
    return addFileEntry(this.pack, header, full, Number(size));
  }
}

/** overlayfs' whiteout: a character device 0/0. */
function isWhiteout(stat: fs.BigIntStats): boolean {
  return (Number(stat.mode) & S_IFMT) === S_IFCHR && stat.rdev === 0n;
}

/**
 * A `.wh.` name would be read back as a whiteout (deleting a file) instead
 * of being created; Docker writes it anyway, which silently loses it.
 */
function refuseWhiteoutName(rel: string): void {
  if (rel.slice(rel.lastIndexOf("/") + 1).startsWith(WHITEOUT_PREFIX)) {
    throw new MiniboxError(
      `cannot store ${q(rel)} in a layer: names starting with ".wh." mean "deleted" in OCI layers`,
    );
  }
}

function refuseOverlayLeftovers(rel: string, xattrs: string[]): void {
  if (xattrs.includes(REDIRECT_XATTR) || xattrs.includes(METACOPY_XATTR)) {
    throw new MiniboxError(
      `cannot turn ${q(rel)} into a layer: overlayfs left part of it in a lower layer`,
      "mount the container's overlay with redirect_dir=off,metacopy=off",
    );
  }
}

/**
 * Host id → container id. An id below the shift is not mapped into the
 * container at all: the RUN step cannot have made it, so something on the
 * host wrote into the upper directory without shifting, and storing it
 * would give away files to an arbitrary owner.
 */
function unshift(id: number, shift: number, what: string, rel: string): number {
  if (id < shift) {
    throw new MiniboxError(
      `cannot store ${q(rel)} in a layer: its ${what} ${id} is outside the container's id range (from ${shift})`,
    );
  }
  return id - shift;
}

/** A pipeline stage that feeds every byte passing through to `hash` (and counts them). */
function hashed(hash: Hash, counter?: { bytes: number }) {
  return async function* (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      hash.update(chunk);
      if (counter) counter.bytes += chunk.length;
      yield chunk;
    }
  };
}

/** Quotes a path for a message; JSON escaping keeps control characters off the terminal. */
function q(name: string): string {
  return JSON.stringify(name);
}
