/**
 * `save`: images out of the store into one tar that is at the same time a
 * docker-archive (manifest.json) and an OCI image layout (index.json,
 * oci-layout, blobs/sha256/…), as Docker 25 writes it. So `docker load`,
 * `podman load`, `skopeo copy docker-archive:…` and `skopeo copy
 * oci-archive:…` all read it, and no registry is needed to move an image.
 *
 * Blobs go in as the store holds them (layers stay gzip-compressed), so an
 * image keeps its manifest digest on the way through an archive. The output
 * is reproducible: fixed entry order, times and owners, so saving the same
 * images twice gives the same bytes.
 */
import { stat } from "node:fs/promises";
import type { Writable } from "node:stream";
import tar from "tar-stream";
import { MiniboxError } from "../errors.js";
import { recordImageEvent } from "../events/image-events.js";
import {
  type ArchiveImage,
  blobName,
  dockerManifestJson,
  OCI_LAYOUT,
  OCI_LAYOUT_FILE,
  ociIndexJson,
  repositoriesJson,
} from "./archive-format.js";
import { sha256, shortId } from "./digest.js";
import { requireImage } from "./images.js";
import { MediaType, parseManifest } from "./manifest.js";
import type { ImageRecord, Store } from "./store.js";
import { addEntry, addFileEntry, streamTar } from "./tar-out.js";

/** What goes in the archive: images with their tags, and the manifests written for them. */
interface Planned {
  images: ArchiveImage[];
  /** Manifests minibox made for images whose stored manifest cannot be reused. */
  madeManifests: Map<string, Buffer>;
}

/** Write the images named by `names` (tags or IDs) as an archive to `out`. */
export async function saveImages(store: Store, names: string[], out: Writable): Promise<void> {
  const plan = await planArchive(store, names);
  const pack = tar.pack();
  await streamTar(pack, () => writeEntries(store, pack, plan), out);
  for (const image of plan.images) await recordImageEvent(store, "save", image.id, image.id);
}

async function planArchive(store: Store, names: string[]): Promise<Planned> {
  const byId = new Map<string, ArchiveImage>();
  const madeManifests = new Map<string, Buffer>();
  for (const name of names) {
    const { record, tag } = await requireImage(store, name);
    let image = byId.get(record.id);
    if (!image) {
      const manifest = await archiveManifest(store, record);
      if (manifest.made) madeManifests.set(manifest.digest, manifest.body);
      image = {
        id: record.id,
        // In the order OCI's examples and Docker write a descriptor's fields.
        manifest: {
          mediaType: manifest.mediaType,
          digest: manifest.digest,
          size: manifest.body.length,
        },
        layerDigests: record.layers.map((l) => l.digest),
        tags: [],
      };
      byId.set(record.id, image);
    }
    if (tag && !image.tags.includes(tag)) image.tags.push(tag);
  }
  return { images: [...byId.values()], madeManifests };
}

/**
 * The manifest the archive's index points to. The stored one is kept
 * (same digest as in the registry) when it describes exactly the blobs we
 * hold; a layer shared with another image may be stored under the other
 * image's blob, and then a new OCI manifest describes what we have.
 */
async function archiveManifest(
  store: Store,
  record: ImageRecord,
): Promise<{ digest: string; body: Buffer; mediaType: string; made: boolean }> {
  for (const digest of [record.id, ...record.layers.map((l) => l.digest)]) {
    if (!store.hasBlob(digest)) {
      throw new MiniboxError(
        `image ${shortId(record.id)} is incomplete: blob ${digest} is missing from the store`,
        "pull the image again",
      );
    }
  }
  if (store.hasBlob(record.manifestDigest)) {
    const body = await store.readBlob(record.manifestDigest);
    const parsed = (() => {
      try {
        return parseManifest(body, record.manifestMediaType);
      } catch {
        return undefined;
      }
    })();
    if (
      parsed?.kind === "manifest" &&
      parsed.config.digest === record.id &&
      parsed.layers.length === record.layers.length &&
      parsed.layers.every((l, i) => l.digest === record.layers[i]?.digest)
    ) {
      return { digest: record.manifestDigest, body, mediaType: parsed.mediaType, made: false };
    }
  }
  const config = await store.readBlob(record.id);
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: record.id, size: config.length },
    layers: record.layers.map((l) => ({
      mediaType: ociLayerType(l.mediaType),
      digest: l.digest,
      size: l.blobSize,
    })),
  };
  const body = Buffer.from(JSON.stringify(manifest));
  return { digest: sha256(body), body, mediaType: MediaType.ociManifest, made: true };
}

/** A Docker layer media type in an OCI manifest becomes its OCI twin. */
function ociLayerType(mediaType: string): string {
  if (mediaType === MediaType.dockerLayerGzip) return MediaType.ociLayerGzip;
  return mediaType || MediaType.ociLayerGzip;
}

/** Fixed metadata for every entry, so the archive depends only on the images. */
const ENTRY = { mtime: new Date(0), uid: 0, gid: 0, uname: "", gname: "" };

async function writeEntries(store: Store, pack: tar.Pack, plan: Planned): Promise<void> {
  await addDirectory(pack, "blobs/");
  await addDirectory(pack, "blobs/sha256/");
  const written = new Set<string>();
  for (const image of plan.images) {
    for (const digest of [...image.layerDigests, image.id, image.manifest.digest]) {
      if (written.has(digest)) continue;
      written.add(digest);
      const made = plan.madeManifests.get(digest);
      if (made) await addBuffer(pack, blobName(digest), made);
      else await addFile(pack, blobName(digest), store.blobPath(digest));
    }
  }
  const json = (value: unknown) => Buffer.from(`${JSON.stringify(value)}\n`);
  await addBuffer(pack, "index.json", json(ociIndexJson(plan.images)));
  await addBuffer(pack, "manifest.json", json(dockerManifestJson(plan.images)));
  await addBuffer(pack, OCI_LAYOUT_FILE, json(OCI_LAYOUT));
  await addBuffer(pack, "repositories", json(repositoriesJson(plan.images)));
}

function addDirectory(pack: tar.Pack, name: string): Promise<void> {
  return addEntry(pack, { ...ENTRY, name, type: "directory", mode: 0o755 });
}

function addBuffer(pack: tar.Pack, name: string, data: Buffer): Promise<void> {
  return addEntry(pack, { ...ENTRY, name, type: "file", mode: 0o644 }, data);
}

/** A blob streamed from the store; its size is known up front, as the tar header needs. */
async function addFile(pack: tar.Pack, name: string, path: string): Promise<void> {
  const size = (await stat(path)).size;
  await addFileEntry(pack, { ...ENTRY, name, mode: 0o644 }, path, size);
}
