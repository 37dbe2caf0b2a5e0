/**
 * `import FILE REF`: a root filesystem tarball becomes a one-layer image —
 * the offline way in for learners (e.g. Alpine's minirootfs tarball).
 *
 * The tarball is unpacked exactly like a pulled layer (same path safety),
 * which also yields its diffID. The stored blob is gzip-compressed, so the
 * image can later be pushed like any other.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { copyFile, type FileHandle, open, rm, stat } from "node:fs/promises";
import { basename } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { MiniboxError } from "../errors.js";
import { recordImageEvent } from "../events/image-events.js";
import { withLock } from "../sys/lock.js";
import { digestHex, sha256File } from "./digest.js";
import { storeImageBlobs } from "./image-blobs.js";
import { unpackLayerDir } from "./layer-dir.js";
import { MediaType, type Platform } from "./manifest.js";
import { formatReference, parseReference } from "./reference.js";
import type { ImageRecord, LayerRecord, Store } from "./store.js";

export async function importTarball(
  store: Store,
  file: string,
  reference: string | undefined,
  platform: Platform,
): Promise<ImageRecord> {
  const ref = reference ? parseReference(reference) : undefined;
  if (ref?.digest) throw new MiniboxError(`cannot import to a digest reference: ${reference}`);
  await store.init();
  await store.sweepTmp();
  const source = file === "-" ? "stdin" : basename(file);
  const layer = await importLayer(store, file, source);
  const created = new Date().toISOString();
  const { configDigest, manifestDigest } = await storeImageBlobs(
    store,
    imageConfig(layer, source, platform, created),
    [layer],
  );
  const imported = await store.updateIndex((index) => {
    const record: ImageRecord = {
      id: configDigest,
      manifestDigest,
      manifestMediaType: MediaType.ociManifest,
      repoDigests: [],
      layers: [layer],
      size: layer.size,
      addedAt: created,
    };
    index.images[configDigest] = record;
    if (ref) index.tags[formatReference(ref)] = configDigest;
    return record;
  });
  await recordImageEvent(store, "import", imported.id, imported.id);
  return imported;
}

/** The tarball as a stored layer: its blob in blobs/, unpacked in layers/. */
async function importLayer(store: Store, file: string, source: string): Promise<LayerRecord> {
  const staging = store.tmpPath("unpack");
  const blobTmp = store.tmpPath("blob");
  const stdinTmp = store.tmpPath("stdin");
  try {
    // Make the layer blob first (gzip, as registries expect), then unpack
    // from it: the same path a pulled layer takes.
    if (file === "-") await pipeline(process.stdin, createWriteStream(stdinTmp));
    await writeGzipBlob(file === "-" ? stdinTmp : file, blobTmp);
    const layer = await unpackBlob(blobTmp, staging);
    await store.commitBlobFile(blobTmp, layer.digest);
    await withLock(store.lockPath(`layer-${digestHex(layer.chainId)}`), async () => {
      if (store.hasLayer(layer.chainId)) await rm(staging, { recursive: true, force: true });
      else await store.commitLayer(staging, layer);
    });
    return layer;
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    await rm(blobTmp, { force: true });
    if (err instanceof MiniboxError)
      throw new MiniboxError(`cannot import ${source}: ${err.message}`, err.hint);
    throw err;
  } finally {
    await rm(stdinTmp, { force: true });
  }
}

async function writeGzipBlob(input: string, blob: string): Promise<void> {
  if (await isGzip(input)) await copyFile(input, blob);
  else await pipeline(createReadStream(input), createGzip(), createWriteStream(blob));
}

/** Unpack the gzip blob into `staging`'s layer directory; the record of the layer it makes. */
async function unpackBlob(blob: string, staging: string): Promise<LayerRecord> {
  const { result: unpacked, opaqueDirs } = await unpackLayerDir(createReadStream(blob), staging);
  return {
    digest: await sha256File(blob),
    mediaType: MediaType.ociLayerGzip,
    blobSize: (await stat(blob)).size,
    diffId: unpacked.diffID,
    chainId: unpacked.diffID,
    size: unpacked.size,
    opaqueDirs,
  };
}

function imageConfig(layer: LayerRecord, source: string, platform: Platform, created: string) {
  return {
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: {},
    rootfs: { type: "layers", diff_ids: [layer.diffId] },
    history: [
      { created, created_by: `minibox import ${source}`, comment: `Imported from ${source}` },
    ],
  };
}

/** gzip starts with 1f 8b; anything else is taken as a plain tar. */
async function isGzip(path: string): Promise<boolean> {
  let handle: FileHandle;
  try {
    handle = await open(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new MiniboxError(`cannot open ${path}: ${code === "ENOENT" ? "no such file" : code}`);
  }
  try {
    const magic = Buffer.alloc(2);
    await handle.read(magic, 0, 2, 0);
    return magic[0] === 0x1f && magic[1] === 0x8b;
  } finally {
    await handle.close();
  }
}
