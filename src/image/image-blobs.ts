/**
 * A new image's own blobs: its config and an OCI manifest that names the
 * config and the layers. Written the same way by `import` and by the build's
 * commit, so both produce images that `push` and `save` treat alike.
 */
import { MediaType } from "./manifest.js";
import type { LayerRecord, Store } from "./store.js";

export async function storeImageBlobs(
  store: Store,
  config: object,
  layers: LayerRecord[],
): Promise<{ configDigest: string; manifestDigest: string }> {
  const configBody = Buffer.from(JSON.stringify(config));
  const configDigest = await store.putBlob(configBody);
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: configDigest, size: configBody.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.blobSize })),
  };
  const manifestDigest = await store.putBlob(Buffer.from(JSON.stringify(manifest)));
  return { configDigest, manifestDigest };
}
