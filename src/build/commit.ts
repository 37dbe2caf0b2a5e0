/**
 * Making a new image from a parent image plus one step: a layer blob (or
 * none, for metadata-only steps like ENV or CMD) and a config change. This
 * is what each Dockerfile instruction ends in.
 *
 * The layer blob is moved into the store, unpacked like a pulled layer (so
 * it is verified the same way and shared by chain ID), then the config and
 * an OCI manifest are written and the image enters the index — last, as
 * in a pull.
 */
import { createReadStream } from "node:fs";
import { rm, stat } from "node:fs/promises";
import { MiniboxError } from "../errors.js";
import { chainIds, digestHex } from "../image/digest.js";
import { storeImageBlobs } from "../image/image-blobs.js";
import { unpackLayerDir } from "../image/layer-dir.js";
import { type ImageConfig, MediaType } from "../image/manifest.js";
import type { ImageRecord, LayerRecord, Store } from "../image/store.js";
import { withLock } from "../sys/lock.js";

export interface NewLayer {
  /** The gzip blob, already written (src/build/diff.ts). */
  path: string;
  digest: string;
  diffID: string;
}

export interface HistoryEntry {
  created_by: string;
  comment?: string;
  /** `commit -a`: Docker records it in the history entry too. */
  author?: string;
}

/**
 * Commit `config` (already changed by the step) as a new image on top of
 * `parent` (undefined for FROM scratch), with `layer` if the step made one.
 */
export async function commitImage(
  store: Store,
  parent: ImageRecord | undefined,
  config: ImageConfig,
  layer: NewLayer | undefined,
  history: HistoryEntry,
  created: string,
): Promise<ImageRecord> {
  const layers: LayerRecord[] = [...(parent?.layers ?? [])];
  const next: ImageConfig = JSON.parse(JSON.stringify(config));
  next.created = created;
  next.rootfs = { type: "layers", diff_ids: [...(parent ? config.rootfs.diff_ids : [])] };
  next.history = [
    ...(config.history ?? []),
    {
      created,
      created_by: history.created_by,
      ...(history.author ? { author: history.author } : {}),
      ...(history.comment ? { comment: history.comment } : {}),
      ...(layer ? {} : { empty_layer: true }),
    },
  ];
  if (layer) {
    next.rootfs.diff_ids.push(layer.diffID);
    layers.push(await storeLayer(store, layer, next.rootfs.diff_ids));
  }
  const { configDigest: id, manifestDigest } = await storeImageBlobs(store, next, layers);
  return store.updateIndex((index) => {
    const record: ImageRecord = {
      id,
      manifestDigest,
      manifestMediaType: MediaType.ociManifest,
      repoDigests: [],
      layers,
      size: layers.reduce((sum, l) => sum + l.size, 0),
      addedAt: index.images[id]?.addedAt ?? created,
      ...(parent ? { parent: parent.id } : {}),
    };
    index.images[id] = record;
    return record;
  });
}

/** Move the blob into the store and unpack it as layer `chainIds(diffIds).at(-1)`. */
async function storeLayer(store: Store, layer: NewLayer, diffIds: string[]): Promise<LayerRecord> {
  const chainId = chainIds(diffIds).at(-1) as string;
  const blobSize = (await stat(layer.path)).size;
  if (store.hasBlob(layer.digest)) await rm(layer.path, { force: true });
  else await store.commitBlobFile(layer.path, layer.digest);
  return withLock(store.lockPath(`layer-${digestHex(chainId)}`), async () => {
    if (store.hasLayer(chainId)) return store.readLayer(chainId);
    const staging = store.tmpPath("unpack");
    try {
      const { result, opaqueDirs } = await unpackLayerDir(
        createReadStream(store.blobPath(layer.digest)),
        staging,
      );
      if (result.diffID !== layer.diffID) {
        throw new MiniboxError(`the new layer unpacks to ${result.diffID}, not ${layer.diffID}`);
      }
      const record: LayerRecord = {
        digest: layer.digest,
        mediaType: MediaType.ociLayerGzip,
        blobSize,
        diffId: layer.diffID,
        chainId,
        size: result.size,
        opaqueDirs,
      };
      await store.commitLayer(staging, record);
      return record;
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      throw err;
    }
  });
}
