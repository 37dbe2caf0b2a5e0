/**
 * `load`: images from an archive into the store — a docker-archive
 * (manifest.json; `docker save`, `podman save`), an OCI image layout
 * (index.json + oci-layout; `skopeo copy … oci-archive:`, `podman save
 * --format oci-archive`), or both at once (`docker save` since 25, `minibox
 * save`). The whole tarball may be gzip-compressed, as Docker accepts.
 *
 * Three phases, so a bad archive leaves the store exactly as it was:
 *   1. extract: every file of the archive goes to a staging directory under
 *      tmp/ and is hashed on the way; a file named blobs/sha256/<hex> must
 *      have that digest;
 *   2. verify: configs and manifests are parsed, blob digests and sizes
 *      checked, and each new layer is unpacked into staging and its diffID
 *      compared with the config's (a layer the store already has is only
 *      hashed);
 *   3. commit: blobs and layers are renamed into the store, and the image
 *      index is written last, as a pull does.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { MiniboxError } from "../errors.js";
import { recordImageEvent } from "../events/image-events.js";
import { withLock } from "../sys/lock.js";
import { type Archive, type ArchiveFile, extractArchive, readSmall } from "./archive-extract.js";
import {
  canonicalTag,
  nameFromAnnotations,
  parseDockerManifestJson,
  parseJson,
} from "./archive-format.js";
import { decompress, detectCompression } from "./compression.js";
import { chainIds, digestHex, shortId } from "./digest.js";
import { unpackLayerDir } from "./layer-dir.js";
import {
  type Descriptor,
  type ImageConfig,
  type ImageIndexManifest,
  MediaType,
  type Platform,
  parseImageConfig,
  parseManifest,
  selectPlatform,
} from "./manifest.js";
import type { ImageRecord, LayerRecord, Store } from "./store.js";

export interface LoadedImage {
  id: string;
  /** Canonical names now pointing at it. */
  tags: string[];
  /** Tags that pointed at another image before (Docker says so). */
  moved: { tag: string; previousId: string }[];
}

/** An image found in the archive, before anything is verified. */
interface Candidate {
  config: ArchiveFile;
  layers: { file: ArchiveFile; mediaType: string }[];
  /** The archive's own manifest (OCI layout); a docker-archive has none, so one is made. */
  manifest?: { file: ArchiveFile; mediaType: string };
  tags: string[];
}

/** A layer ready to be committed. */
interface PreparedLayer {
  record: LayerRecord;
  blob: ArchiveFile;
  /** Staging directory holding diff/, when this load unpacked the layer. */
  staging?: string;
}

export async function loadArchive(
  store: Store,
  input: Readable,
  source: string,
  platform: Platform,
): Promise<LoadedImage[]> {
  await store.init();
  await store.sweepTmp();
  const staging = store.tmpPath("load");
  await mkdir(staging, { mode: 0o700 });
  try {
    const archive = await extractArchive(input, staging);
    const candidates = findImages(archive, platform);
    // Layers checked in this load (an archive often repeats a base layer), per blob and chain.
    const verified = new Map<string, PreparedLayer>();
    const prepared = [];
    for (const candidate of candidates) {
      prepared.push(await prepareImage(store, candidate, staging, verified));
    }
    const loaded = await commit(store, prepared);
    for (const image of loaded) await recordImageEvent(store, "load", image.id, image.id);
    return loaded;
  } catch (err) {
    if (err instanceof MiniboxError) {
      throw new MiniboxError(`cannot load ${source}: ${err.message}`, err.hint);
    }
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined || code.startsWith("Z_")) {
      // tar-stream's and zlib's errors: the bytes themselves are bad.
      throw new MiniboxError(
        `cannot load ${source}: the archive is truncated or corrupt (${lowerFirst((err as Error).message)})`,
      );
    }
    throw err;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

// ---- find and verify ----------------------------------------------------------

/**
 * The images of the archive. With both formats present (Docker 25, minibox)
 * the OCI index gives the manifests and manifest.json adds its tags; an
 * image is identified by its config digest.
 */
function findImages(archive: Archive, platform: Platform): Candidate[] {
  const manifestJson = archive.get("manifest.json");
  const indexJson = archive.get("index.json");
  if (!manifestJson && !indexJson) {
    throw new MiniboxError(
      "it is not an image archive: it has neither manifest.json nor index.json",
      "for a root filesystem tarball use 'minibox import'",
    );
  }
  const byConfig = new Map<string, Candidate>();
  const add = (candidate: Candidate) => {
    const known = byConfig.get(candidate.config.digest);
    if (!known) {
      byConfig.set(candidate.config.digest, candidate);
      return;
    }
    known.manifest ??= candidate.manifest;
    if (candidate.manifest) known.layers = candidate.layers;
    for (const tag of candidate.tags) if (!known.tags.includes(tag)) known.tags.push(tag);
  };
  if (indexJson) for (const c of ociImages(archive, indexJson, platform)) add(c);
  if (manifestJson) for (const c of dockerImages(archive, manifestJson)) add(c);
  if (byConfig.size === 0) throw new MiniboxError("the archive holds no images");
  return [...byConfig.values()];
}

function dockerImages(archive: Archive, manifestJson: ArchiveFile): Candidate[] {
  const entries = parseDockerManifestJson(readSmall(manifestJson));
  return entries.map((entry) => ({
    config: archive.require(entry.config, "an image config"),
    layers: entry.layers.map((layer) => ({
      file: archive.require(layer, "a layer"),
      mediaType: "",
    })),
    tags: entry.repoTags.map((t) => {
      const tag = canonicalTag(t);
      if (!tag) throw new MiniboxError(`manifest.json names an invalid tag ${JSON.stringify(t)}`);
      return tag;
    }),
  }));
}

function ociImages(archive: Archive, indexJson: ArchiveFile, platform: Platform): Candidate[] {
  if (!archive.get("oci-layout")) {
    throw new MiniboxError("the archive has index.json but no oci-layout file");
  }
  const index = parseIndex(readSmall(indexJson), "index.json");
  return index.manifests.map((desc) => {
    const name = nameFromAnnotations(desc.annotations);
    return ociImage(archive, desc, platform, name ? [name] : [], 0);
  });
}

function ociImage(
  archive: Archive,
  desc: Descriptor,
  platform: Platform,
  tags: string[],
  depth: number,
): Candidate {
  if (depth > 4) throw new MiniboxError("the archive's indexes are nested too deeply");
  const file = archive.blob(desc, "manifest");
  const body = readSmall(file);
  const manifest = parseManifest(jsonBody(body, `manifest ${desc.digest}`), desc.mediaType);
  if (manifest.kind === "index") {
    // A multi-platform image: the host's platform, among the ones the archive
    // holds (Docker saves only the platforms it has).
    const present = manifest.manifests.filter((d) =>
      archive.get(`blobs/sha256/${digestHex(d.digest)}`),
    );
    const chosen = selectPlatform({ ...manifest, manifests: present }, platform);
    return ociImage(archive, chosen, platform, tags, depth + 1);
  }
  return {
    config: archive.blob(manifest.config, "config"),
    layers: manifest.layers.map((layer) => ({
      file: archive.blob(layer, "layer"),
      mediaType: layer.mediaType,
    })),
    manifest: { file, mediaType: manifest.mediaType },
    tags,
  };
}

function parseIndex(body: Buffer, what: string): ImageIndexManifest {
  const parsed = parseManifest(jsonBody(body, what), MediaType.ociIndex);
  if (parsed.kind !== "index") throw new MiniboxError(`${what} is not an OCI index`);
  return parsed;
}

/** Checks JSON first, so the message names the file (parseManifest's speaks of a registry). */
function jsonBody(body: Buffer, what: string): Buffer {
  parseJson(body, what);
  return body;
}

interface PreparedImage {
  candidate: Candidate;
  config: ImageConfig;
  configBody: Buffer;
  manifest: { body: Buffer; mediaType: string };
  layers: PreparedLayer[];
}

/** Parse the config, check every layer's diffID, unpack the ones the store lacks. */
async function prepareImage(
  store: Store,
  candidate: Candidate,
  staging: string,
  verified: Map<string, PreparedLayer>,
): Promise<PreparedImage> {
  const configBody = readSmall(candidate.config);
  const config = parseImageConfig(jsonBody(configBody, "an image config"));
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== candidate.layers.length) {
    throw new MiniboxError(
      `image ${shortId(candidate.config.digest)} is inconsistent: ${candidate.layers.length} layers, but its config lists ${diffIds.length}`,
    );
  }
  const chains = chainIds(diffIds);
  const layers: PreparedLayer[] = [];
  for (const [i, { file, mediaType }] of candidate.layers.entries()) {
    const diffId = diffIds[i] as string;
    const chainId = chains[i] as string;
    const type = mediaType || (await layerMediaType(file));
    const base = { digest: file.digest, mediaType: type, blobSize: file.size, diffId, chainId };
    try {
      const done = verified.get(`${file.digest} ${chainId}`);
      if (done) {
        layers.push(done);
      } else if (store.hasLayer(chainId)) {
        const actual = await diffIdOf(file);
        if (actual !== diffId) throw diffIdMismatch(file, actual, diffId);
        const { size, opaqueDirs } = await store.readLayer(chainId);
        layers.push({ record: { ...base, size, opaqueDirs }, blob: file });
      } else {
        // One directory per layer prepared so far (the map grows with each):
        // the same chain may come in two blobs, the same blob in two chains.
        const dir = join(staging, `layer-${verified.size}`);
        const { result, opaqueDirs } = await unpackLayerDir(createReadStream(file.path), dir);
        if (result.diffID !== diffId) throw diffIdMismatch(file, result.diffID, diffId);
        layers.push({
          record: { ...base, size: result.size, opaqueDirs },
          blob: file,
          staging: dir,
        });
      }
    } catch (err) {
      if (err instanceof MiniboxError) {
        throw new MiniboxError(`layer ${shortId(file.digest)}: ${err.message}`, err.hint);
      }
      throw err;
    }
    verified.set(`${file.digest} ${chainId}`, layers[layers.length - 1] as PreparedLayer);
  }
  const manifest = candidate.manifest
    ? { body: readSmall(candidate.manifest.file), mediaType: candidate.manifest.mediaType }
    : madeManifest(candidate.config, layers);
  return { candidate, config, configBody, manifest, layers };
}

function diffIdMismatch(file: ArchiveFile, actual: string, expected: string): MiniboxError {
  return new MiniboxError(
    `blob ${file.digest} unpacks to ${actual}, but the image config says ${expected}`,
    "the archive is inconsistent; it cannot be trusted",
  );
}

/** The sha256 of the uncompressed layer, without unpacking it. */
async function diffIdOf(file: ArchiveFile): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of decompress(createReadStream(file.path))) hash.update(chunk);
  return `sha256:${hash.digest("hex")}`;
}

/** A docker-archive does not say how its layers are compressed: look. */
async function layerMediaType(file: ArchiveFile): Promise<string> {
  const handle = createReadStream(file.path, { start: 0, end: 5 });
  const chunks: Buffer[] = [];
  for await (const chunk of handle) chunks.push(chunk as Buffer);
  const kind = detectCompression(Buffer.concat(chunks));
  if (kind === "gzip") return MediaType.ociLayerGzip;
  if (kind === "zstd") return MediaType.ociLayerZstd;
  return MediaType.ociLayer;
}

/** An OCI manifest for an image that came without one (docker-archive). */
function madeManifest(
  config: ArchiveFile,
  layers: PreparedLayer[],
): { body: Buffer; mediaType: string } {
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({
      mediaType: l.record.mediaType,
      digest: l.record.digest,
      size: l.record.blobSize,
    })),
  };
  return { body: Buffer.from(JSON.stringify(manifest)), mediaType: MediaType.ociManifest };
}

// ---- commit ---------------------------------------------------------------------

async function commit(store: Store, images: PreparedImage[]): Promise<LoadedImage[]> {
  const manifestDigests: string[] = [];
  for (const image of images) {
    for (const layer of image.layers) {
      // The same file can serve several layers of several images: moved once.
      if (!store.hasBlob(layer.blob.digest)) {
        await store.commitBlobFile(layer.blob.path, layer.blob.digest);
      }
      const { staging, record } = layer;
      if (!staging) continue;
      await withLock(store.lockPath(`layer-${digestHex(record.chainId)}`), async () => {
        if (store.hasLayer(record.chainId)) await rm(staging, { recursive: true, force: true });
        else await store.commitLayer(staging, record);
      });
      layer.staging = undefined;
    }
    await store.putBlob(image.configBody, image.candidate.config.digest);
    manifestDigests.push(await store.putBlob(image.manifest.body));
  }
  const addedAt = new Date().toISOString();
  return store.updateIndex((index) =>
    images.map((image, i) => {
      const id = image.candidate.config.digest;
      const gone = image.layers.find((l) => !store.hasLayer(l.record.chainId));
      if (gone) {
        throw new MiniboxError(
          `layer ${gone.record.chainId} was removed during the load`,
          "load again",
        );
      }
      const previous = index.images[id];
      const record: ImageRecord = {
        id,
        manifestDigest: manifestDigests[i] as string,
        manifestMediaType: image.manifest.mediaType,
        repoDigests: previous?.repoDigests ?? [],
        layers: image.layers.map((l) => l.record),
        size: image.layers.reduce((sum, l) => sum + l.record.size, 0),
        addedAt: previous?.addedAt ?? addedAt,
      };
      index.images[id] = record;
      const moved = [];
      for (const tag of image.candidate.tags) {
        const previousId = index.tags[tag];
        if (previousId && previousId !== id) moved.push({ tag, previousId });
        index.tags[tag] = id;
      }
      return { id, tags: image.candidate.tags, moved };
    }),
  );
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}
