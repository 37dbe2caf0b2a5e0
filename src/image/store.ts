/**
 * The local image store: blobs, unpacked layers and the image index, under
 * minibox's root (src/layout.ts names every path: blobs/, layers/,
 * images.json, blob-sources.json, tmp/, locks/).
 *
 * Crash safety comes from ordering and rename(2): a blob is written to tmp/,
 * verified, then renamed into blobs/; a layer is unpacked into tmp/, then its
 * directory is renamed into layers/; the image index is rewritten whole and
 * renamed over the old one, and only after all its blobs and layers exist. A
 * process killed at any moment therefore leaves either the old state or the new
 * one, plus junk in tmp/ that the next command sweeps.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { MiniboxError } from "../errors.js";
import { layerPaths, type RootLayout, rootLayout } from "../layout.js";
import { withLock } from "../sys/lock.js";
import { processAlive } from "../sys/process.js";
import { digestHex, sha256 } from "./digest.js";

export interface LayerRecord {
  /** Digest of the (usually compressed) blob as the registry serves it. */
  digest: string;
  mediaType: string;
  /** Size of that blob in bytes. */
  blobSize: number;
  /** Digest of the uncompressed tar (the config's rootfs.diff_ids entry). */
  diffId: string;
  chainId: string;
  /** Bytes of file content once unpacked. */
  size: number;
  /**
   * Directories this layer makes opaque (hides everything below it), as
   * paths relative to the layer root. Recorded at unpack time so that reading
   * an image file (e.g. /etc/passwd for `-u`) needs no xattr calls.
   */
  opaqueDirs?: string[];
}

export interface ImageRecord {
  /** The image ID: the digest of its config blob, as in Docker. */
  id: string;
  manifestDigest: string;
  manifestMediaType: string;
  /** "docker.io/library/alpine@sha256:…": the digest a registry knows it by (index or manifest). */
  repoDigests: string[];
  layers: LayerRecord[];
  /** Sum of the layers' unpacked sizes. */
  size: number;
  /** When it entered this store (RFC 3339). */
  addedAt: string;
  /**
   * The image a build step started from (Docker's "Parent"): built images
   * only. `images` hides untagged parents, `history` names them, and `rmi`
   * removes them with their last child.
   */
  parent?: string;
}

export interface ImageIndex {
  /** Canonical "domain/path:tag" → image ID. */
  tags: Record<string, string>;
  images: Record<string, ImageRecord>;
}

/** Enough mount candidates per blob; Docker tries a handful too. */
const MAX_SOURCES_PER_BLOB = 5;

export class Store {
  constructor(readonly root: string) {
    this.layout = rootLayout(root);
  }

  /** Every path under the root (src/layout.ts). */
  readonly layout: RootLayout;

  get blobsDir(): string {
    return this.layout.blobs;
  }
  get layersDir(): string {
    return this.layout.layers;
  }
  get tmpDir(): string {
    return this.layout.tmp;
  }
  get locksDir(): string {
    return this.layout.locks;
  }
  private get indexPath(): string {
    return this.layout.images;
  }
  private get sourcesPath(): string {
    return this.layout.blobSources;
  }

  async init(): Promise<void> {
    // The root may be entered (not listed) by anyone: a container's root is
    // an unprivileged host uid under user namespaces, and its init walks
    // <root>/containers/<id>/rootfs before pivot_root. What is inside stays 0700.
    await mkdir(this.root, { recursive: true, mode: 0o711 });
    await chmod(this.root, 0o711);
    for (const dir of [this.blobsDir, this.layersDir, this.tmpDir, this.locksDir]) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    }
    await mkdir(this.layout.containers, { recursive: true, mode: 0o711 });
  }

  lockPath(name: string): string {
    return this.layout.lock(name);
  }

  /** A fresh name under tmp/ carrying our PID, so a sweep can tell live work from junk. */
  tmpPath(kind: string): string {
    return join(this.tmpDir, `${kind}-${process.pid}-${randomBytes(4).toString("hex")}`);
  }

  // ---- blobs -------------------------------------------------------------

  blobPath(digest: string): string {
    return join(this.blobsDir, digestHex(digest));
  }

  hasBlob(digest: string): boolean {
    return existsSync(this.blobPath(digest));
  }

  async readBlob(digest: string): Promise<Buffer> {
    try {
      return await readFile(this.blobPath(digest));
    } catch {
      throw new MiniboxError(`blob ${digest} is missing from the store`, "pull the image again");
    }
  }

  /** Store a small blob we hold in memory (manifest, config), verifying its digest. */
  async putBlob(data: Buffer, expected?: string): Promise<string> {
    const digest = sha256(data);
    if (expected && expected !== digest) {
      throw new MiniboxError(`digest mismatch: expected ${expected}, got ${digest}`);
    }
    if (!this.hasBlob(digest)) {
      const tmp = this.tmpPath("blob");
      await writeFile(tmp, data, { mode: 0o644 });
      await rename(tmp, this.blobPath(digest));
    }
    return digest;
  }

  /** Move a verified file into the blob store (same filesystem, so rename is atomic). */
  async commitBlobFile(tmpFile: string, digest: string): Promise<void> {
    await rename(tmpFile, this.blobPath(digest));
  }

  /** Where an interrupted download of `digest` is kept, so the next try can resume it. */
  partialBlobPath(digest: string): string {
    return join(this.tmpDir, `partial-${digestHex(digest)}`);
  }

  // ---- layers ------------------------------------------------------------

  layerDir(chainId: string): string {
    return join(this.layersDir, digestHex(chainId));
  }

  /** The directory overlayfs stacks: the layer's own files, whiteouts in overlay form. */
  layerDiffDir(chainId: string): string {
    return layerPaths(this.layerDir(chainId)).diff;
  }

  hasLayer(chainId: string): boolean {
    return existsSync(layerPaths(this.layerDir(chainId)).record);
  }

  async readLayer(chainId: string): Promise<LayerRecord> {
    return JSON.parse(await readFile(layerPaths(this.layerDir(chainId)).record, "utf8"));
  }

  /**
   * Publish a layer unpacked into `stagingDir` (which holds diff/): write its
   * record, then rename the whole directory into place in one step.
   */
  async commitLayer(stagingDir: string, record: LayerRecord): Promise<void> {
    await writeFile(layerPaths(stagingDir).record, `${JSON.stringify(record, null, 2)}\n`);
    await rename(stagingDir, this.layerDir(record.chainId));
  }

  // ---- image index ---------------------------------------------------------

  async readIndex(): Promise<ImageIndex> {
    try {
      return JSON.parse(await readFile(this.indexPath, "utf8"));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { tags: {}, images: {} };
      throw new MiniboxError(
        `image index ${this.indexPath} is unreadable: ${(err as Error).message}`,
      );
    }
  }

  /**
   * Read-modify-write of the image index under its lock; the new version is
   * written to a temp file and renamed over the old one.
   */
  async updateIndex<T>(change: (index: ImageIndex) => T | Promise<T>): Promise<T> {
    return withLock(this.lockPath("images"), async () => {
      const index = await this.readIndex();
      const result = await change(index);
      const tmp = this.tmpPath("index");
      await writeFile(tmp, `${JSON.stringify(index, null, 2)}\n`);
      await rename(tmp, this.indexPath);
      return result;
    });
  }

  async listImages(): Promise<{ record: ImageRecord; tags: string[] }[]> {
    const index = await this.readIndex();
    return Object.values(index.images).map((record) => ({
      record,
      tags: Object.keys(index.tags).filter((tag) => index.tags[tag] === record.id),
    }));
  }

  // ---- blob sources ----------------------------------------------------------

  /**
   * Where blobs are known to live ("domain/path" of repositories), most
   * recent first: a push to another repository of the same registry can
   * then ask it to mount the blob instead of uploading it again (Docker
   * keeps the same record, its "v2 metadata"). Only a hint: a stale entry
   * costs one failed mount, so removing images does not prune it.
   */
  async blobSources(digest: string): Promise<string[]> {
    try {
      const all = JSON.parse(await readFile(this.sourcesPath, "utf8")) as Record<string, string[]>;
      return all[digest] ?? [];
    } catch {
      return [];
    }
  }

  async recordBlobSources(digests: string[], repository: string): Promise<void> {
    await withLock(this.lockPath("blob-sources"), async () => {
      let all: Record<string, string[]> = {};
      try {
        all = JSON.parse(await readFile(this.sourcesPath, "utf8"));
      } catch {
        // absent or damaged: a hint file starts over
      }
      for (const digest of digests) {
        const previous = (all[digest] ?? []).filter((r) => r !== repository);
        all[digest] = [repository, ...previous].slice(0, MAX_SOURCES_PER_BLOB);
      }
      const tmp = this.tmpPath("sources");
      await writeFile(tmp, `${JSON.stringify(all)}\n`);
      await rename(tmp, this.sourcesPath);
    });
  }

  // ---- housekeeping --------------------------------------------------------

  /**
   * Remove what killed processes left in tmp/: entries named after a PID that
   * no longer runs. Partial downloads (partial-<hex>) are kept for resuming.
   */
  async sweepTmp(): Promise<void> {
    let entries: string[];
    try {
      entries = await readdir(this.tmpDir);
    } catch {
      return;
    }
    for (const name of entries) {
      const pid = Number(/^[a-z]+-(\d+)-/.exec(name)?.[1]);
      if (!pid || pid === process.pid || processAlive(pid)) continue;
      await rm(join(this.tmpDir, name), { recursive: true, force: true });
    }
  }

  /** Bytes used by a path (for diagnostics); 0 when absent. */
  async sizeOf(path: string): Promise<number> {
    try {
      return (await stat(path)).size;
    } catch {
      return 0;
    }
  }
}
