/**
 * `pull`: from a reference to layer directories ready to be stacked.
 *
 *   1. resolve the tag to a manifest (through an index: pick the host's platform)
 *   2. fetch the config blob; it lists the layers' diffIDs
 *   3. for each layer, concurrently: download the blob (resumable, verified),
 *      then unpack it into its own directory keyed by chain ID
 *   4. record the image in the index — last, so a killed pull never shows up
 *      as a half image
 *
 * Each blob and each layer has its own flock, so two pulls of the same image
 * at once share the work: the second waits for the first's download of a
 * blob, then finds it in the store.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rm, stat, truncate } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { PassThrough, type Readable } from "node:stream";
import { MiniboxError } from "../errors.js";
import { recordImageEvent } from "../events/image-events.js";
import { preloadLibc } from "../sys/libc.js";
import { withLock } from "../sys/lock.js";
import type { CredentialStore } from "./credentials.js";
import { chainIds, digestHex, shortId } from "./digest.js";
import { type UnpackedLayerDir, unpackLayerDir } from "./layer-dir.js";
import {
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
  MediaType,
  type Platform,
  parseImageConfig,
  parseManifest,
  selectPlatform,
} from "./manifest.js";
import {
  familiarRepository,
  familiarString,
  formatReference,
  type ImageReference,
  repositoryName,
} from "./reference.js";
import {
  type EndpointOptions,
  RegistryClient,
  RegistryError,
  resolveEndpoints,
  TransientError,
  withRetries,
} from "./registry.js";
import type { ImageIndex, ImageRecord, LayerRecord, Store } from "./store.js";

/** What a pull tells the user as it goes; the CLI draws it (bars on a TTY, lines otherwise). */
export interface PullReporter {
  status(line: string): void;
  layer(id: string, status: string, current?: number, total?: number): void;
  /** Finish drawing (a terminal's progress bars); optional. */
  stop?(): void;
}

export const silentReporter: PullReporter = { status() {}, layer() {} };

export interface PullOptions extends EndpointOptions {
  platform: Platform;
  credentials: CredentialStore;
  reporter?: PullReporter;
}

export interface PullResult {
  record: ImageRecord;
  /** False when the image was already complete in the store. */
  downloaded: boolean;
  repoDigest: string;
}

/** How many layers download at once (Docker's default is 3). */
const CONCURRENT_DOWNLOADS = 3;

export async function pullImage(
  store: Store,
  ref: ImageReference,
  options: PullOptions,
): Promise<PullResult> {
  const reporter = options.reporter ?? silentReporter;
  // The store is made ready while the manifest request is in flight; nothing
  // touches it before the manifest is in.
  const storeReady = store.init().then(() => store.sweepTmp());
  storeReady.catch(() => {}); // awaited (and its error thrown) in pullFrom
  const endpoints = resolveEndpoints(ref.domain, options);
  let lastError: unknown;
  for (const endpoint of endpoints) {
    const client = new RegistryClient(endpoint, await options.credentials.get(ref.domain));
    try {
      return await pullFrom(store, storeReady, client, ref, options, reporter);
    } catch (err) {
      // A mirror that fails for any reason is skipped, as Docker does; the
      // registry itself is the last word.
      if (!endpoint.mirror) throw err;
      lastError = err;
      reporter.status(
        `mirror ${endpoint.baseUrl} failed (${(err as Error).message}); trying ${ref.domain}`,
      );
    }
  }
  throw lastError;
}

/** Docker's path for official images drops "library/"; its pull output does the same. */
function displayPath(ref: ImageReference): string {
  return ref.domain === "docker.io" && ref.path.startsWith("library/")
    ? ref.path.slice(8)
    : ref.path;
}

async function pullFrom(
  store: Store,
  storeReady: Promise<void>,
  client: RegistryClient,
  ref: ImageReference,
  options: PullOptions,
  reporter: PullReporter,
): Promise<PullResult> {
  reporter.status(`${ref.digest ?? ref.tag}: Pulling from ${displayPath(ref)}`);
  const resolving = resolveManifest(client, ref, options.platform);
  resolving.catch(() => {}); // awaited below
  // While the registry answers, load the FFI the layer and blob locks need
  // (koffi, ~20 ms of CPU): one turn of the event loop first, so the request
  // is on the wire before the main thread is busy.
  await new Promise<void>((resolve) => setImmediate(resolve));
  preloadLibc();
  const resolved = await resolving;
  await storeReady;
  const { manifest } = resolved;
  const configBody = await fetchSmallBlob(client, ref.path, manifest.config);
  const config = parseImageConfig(configBody);
  checkPlatform(config, options.platform, resolved.fromIndex);
  const layers = layersToPull(manifest, config);
  const imageId = manifest.config.digest;
  const existing = (await store.readIndex()).images[imageId];
  const records = await pullLayers(store, client, ref.path, layers, config, reporter);
  // Everything the image needs exists now; only then does it enter the index.
  for (const blob of resolved.blobs) await store.putBlob(blob.body, blob.digest);
  await store.putBlob(configBody, imageId);
  const record = await store.updateIndex((index) =>
    indexPulledImage(store, index, ref, resolved, records),
  );
  // Remembered so that pushing these blobs elsewhere on this registry can mount them.
  await store.recordBlobSources(
    [imageId, ...layers.map((l) => l.digest)],
    `${ref.domain}/${ref.path}`,
  );
  reporter.status(`Digest: ${resolved.top.digest}`);
  await recordImageEvent(store, "pull", familiarString(ref), familiarRepository(ref), record.id);
  return { record, downloaded: !existing, repoDigest: resolved.repoDigest };
}

/** The image manifest a reference names, through a manifest list when it names one. */
interface ResolvedManifest {
  /** What the reference names (a manifest list or the manifest itself). */
  top: { body: Buffer; digest: string };
  /** "domain/path@digest" of `top`, for the record's repoDigests. */
  repoDigest: string;
  fromIndex: boolean;
  manifest: ImageManifest;
  manifestDigest: string;
  manifestMediaType: string;
  /** The manifest blobs to store with the image (list and manifest). */
  blobs: { body: Buffer; digest: string }[];
}

async function resolveManifest(
  client: RegistryClient,
  ref: ImageReference,
  platform: Platform,
): Promise<ResolvedManifest> {
  const top = await getManifestExplained(client, ref, ref.digest ?? ref.tag ?? "latest");
  const topManifest = parseManifest(top.body, top.contentType);
  const repoDigest = `${repositoryName(ref)}@${top.digest}`;
  if (topManifest.kind !== "index") {
    return {
      top,
      repoDigest,
      fromIndex: false,
      manifest: topManifest,
      manifestDigest: top.digest,
      manifestMediaType: topManifest.mediaType,
      blobs: [top],
    };
  }
  const chosen = selectPlatform(topManifest, platform);
  const sub = await client.getManifest(ref.path, chosen.digest);
  const parsed = parseManifest(sub.body, sub.contentType ?? chosen.mediaType);
  if (parsed.kind !== "manifest")
    throw new MiniboxError("a manifest list points to another manifest list");
  return {
    top,
    repoDigest,
    fromIndex: true,
    manifest: parsed,
    manifestDigest: sub.digest,
    manifestMediaType: parsed.mediaType,
    blobs: [top, sub],
  };
}

/** The manifest's layers minibox pulls (foreign layers with URLs are skipped, as Docker does). */
function layersToPull(manifest: ImageManifest, config: ImageConfig): Descriptor[] {
  const layers = manifest.layers.filter(
    (l) => l.mediaType !== MediaType.dockerForeignLayerGzip || !l.urls,
  );
  if (layers.length !== config.rootfs.diff_ids.length) {
    throw new MiniboxError(
      `image is inconsistent: its manifest lists ${layers.length} layers but its config ${config.rootfs.diff_ids.length}`,
    );
  }
  return layers;
}

/** Every layer in the store (downloaded and unpacked, unless already there), a few at once. */
async function pullLayers(
  store: Store,
  client: RegistryClient,
  repo: string,
  layers: Descriptor[],
  config: ImageConfig,
  reporter: PullReporter,
): Promise<LayerRecord[]> {
  const diffIds = config.rootfs.diff_ids;
  const chains = chainIds(diffIds);
  return mapConcurrent(layers, CONCURRENT_DOWNLOADS, (layer, i) =>
    ensureLayer(store, client, repo, layer, diffIds[i] as string, chains[i] as string, reporter),
  );
}

/** The pulled image's record in the index (under the index lock), tagged when pulled by tag. */
function indexPulledImage(
  store: Store,
  index: ImageIndex,
  ref: ImageReference,
  resolved: ResolvedManifest,
  records: LayerRecord[],
): ImageRecord {
  // An rmi running meanwhile may have removed a layer we found present; it
  // deletes under this same lock, so checking here is enough.
  const gone = records.find((l) => !store.hasLayer(l.chainId));
  if (gone)
    throw new MiniboxError(`layer ${gone.chainId} was removed during the pull`, "pull again");
  const imageId = resolved.manifest.config.digest;
  const previous = index.images[imageId];
  const rec: ImageRecord = {
    id: imageId,
    manifestDigest: resolved.manifestDigest,
    manifestMediaType: resolved.manifestMediaType,
    repoDigests: unique([...(previous?.repoDigests ?? []), resolved.repoDigest]),
    layers: records,
    size: records.reduce((sum, l) => sum + l.size, 0),
    addedAt: previous?.addedAt ?? new Date().toISOString(),
  };
  index.images[imageId] = rec;
  if (ref.tag && !ref.digest) index.tags[formatReference({ ...ref, digest: undefined })] = imageId;
  return rec;
}

/** Translate the registry's "not found" codes into what the user asked for. */
async function getManifestExplained(client: RegistryClient, ref: ImageReference, wanted: string) {
  try {
    return await client.getManifest(ref.path, wanted);
  } catch (err) {
    if (err instanceof RegistryError && err.status === 404) {
      const name = `${repositoryName(ref)}${ref.digest ? `@${ref.digest}` : `:${ref.tag}`}`;
      // distribution answers MANIFEST_UNKNOWN for a missing repository too, so
      // like Docker we cannot tell "no such image" from "no such tag".
      if (err.has("NAME_UNKNOWN")) {
        throw new MiniboxError(
          `repository ${repositoryName(ref)} not found`,
          "check the image name",
        );
      }
      throw new MiniboxError(
        `manifest for ${name} not found: manifest unknown`,
        "check the image name and tag",
      );
    }
    throw err;
  }
}

function checkPlatform(config: ImageConfig, want: Platform, fromIndex: boolean): void {
  if (fromIndex) return; // the index already said which platform this is
  if (
    config.os &&
    config.architecture &&
    (config.os !== want.os || config.architecture !== want.architecture)
  ) {
    throw new MiniboxError(
      `image is for ${config.os}/${config.architecture}, not ${want.os}/${want.architecture}`,
      "pick a tag built for this platform or pass --platform",
    );
  }
}

/** Manifests' small blobs (configs) are fetched into memory and verified. */
async function fetchSmallBlob(
  client: RegistryClient,
  repo: string,
  desc: Descriptor,
): Promise<Buffer> {
  const body = await withRetries(`cannot fetch blob ${desc.digest} from ${client.domain}`, () =>
    client.getBlob(repo, desc.digest),
  );
  const hash = createHash("sha256").update(body).digest("hex");
  if (`sha256:${hash}` !== desc.digest) {
    throw new MiniboxError(
      `digest mismatch for blob ${desc.digest}: the registry sent content with digest sha256:${hash}`,
      "the registry's copy is damaged or was tampered with",
    );
  }
  return body;
}

/**
 * Make sure the layer is unpacked in the store. The blob is downloaded to
 * the store and, in the same pass, streamed into the unpacker, so a big
 * layer is unpacked while it arrives instead of after. Nothing is published
 * before the blob's digest and the layer's diffID are both verified.
 */
async function ensureLayer(
  store: Store,
  client: RegistryClient,
  repo: string,
  desc: Descriptor,
  diffId: string,
  chainId: string,
  reporter: PullReporter,
): Promise<LayerRecord> {
  const id = shortId(desc.digest);
  if (store.hasLayer(chainId)) {
    reporter.layer(id, "Already exists");
    return store.readLayer(chainId);
  }
  return withLock(
    store.lockPath(`layer-${digestHex(chainId)}`),
    async () => {
      // Another pull may have finished it while we waited for the lock.
      if (store.hasLayer(chainId)) {
        reporter.layer(id, "Already exists");
        return store.readLayer(chainId);
      }
      const staging = store.tmpPath("unpack");
      const hadBlob = store.hasBlob(desc.digest);
      try {
        let unpacked = await unpackWhileDownloading(store, client, repo, desc, staging, reporter);
        if (!unpacked) {
          // The blob came from the store or from a resumed download: unpack it from disk.
          reporter.layer(id, "Extracting");
          unpacked = await unpackInto(staging, createReadStream(store.blobPath(desc.digest)));
        }
        const { result, opaqueDirs } = unpacked;
        if (result.diffID !== diffId) {
          throw new MiniboxError(
            `layer ${desc.digest} unpacks to ${result.diffID}, but the image config says ${diffId}`,
            "the image is inconsistent; it cannot be trusted",
          );
        }
        const record: LayerRecord = {
          digest: desc.digest,
          mediaType: desc.mediaType,
          blobSize: desc.size,
          diffId,
          chainId,
          size: result.size,
          opaqueDirs,
        };
        await store.commitLayer(staging, record);
        reporter.layer(id, "Pull complete");
        return record;
      } catch (err) {
        await rm(staging, { recursive: true, force: true });
        // A blob this pull brought in for a layer that was refused (an
        // unsafe entry, a wrong diffID) is not kept: the store stays as it was.
        if (!hadBlob) await rm(store.blobPath(desc.digest), { force: true });
        if (err instanceof MiniboxError) {
          throw new MiniboxError(`layer ${shortId(desc.digest)}: ${err.message}`, err.hint);
        }
        throw err;
      }
    },
    () => reporter.layer(id, "Waiting"),
  );
}

/** Unpack a tar stream into a fresh layer directory `staging`, noting opaque directories. */
async function unpackInto(staging: string, input: Readable): Promise<UnpackedLayerDir> {
  await rm(staging, { recursive: true, force: true });
  return unpackLayerDir(input, staging);
}

/**
 * Download the blob with a tee into the unpacker. Returns undefined when
 * the tee could not see the blob whole and in order (it was already in the
 * store, or the download resumed in a way the unpacker cannot follow); the
 * caller then unpacks from the stored blob.
 */
async function unpackWhileDownloading(
  store: Store,
  client: RegistryClient,
  repo: string,
  desc: Descriptor,
  staging: string,
  reporter: PullReporter,
): Promise<UnpackedLayerDir | undefined> {
  const tee = new Tee();
  const unpacking = unpackInto(staging, tee.stream).then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  try {
    await downloadBlob(store, client, repo, desc, reporter, tee);
  } catch (err) {
    tee.abandon();
    await unpacking;
    throw err;
  }
  if (!tee.whole) {
    tee.abandon();
    await unpacking;
    return undefined;
  }
  reporter.layer(shortId(desc.digest), "Extracting");
  tee.end();
  const outcome = await unpacking;
  if ("error" in outcome) throw outcome.error;
  return outcome.value;
}

/**
 * The unpacker's copy of a download. It is "whole" only while it has seen
 * every byte from the first one, in order; a gap (the server ignored a
 * Range request, or the download began from a partial file of an earlier
 * process that we did not feed it) makes it useless, and it is abandoned.
 */
class Tee {
  readonly stream = new PassThrough({ highWaterMark: 1 << 20 });
  private fed = 0;
  private broken = false;
  private fedAny = false;

  get whole(): boolean {
    return !this.broken && this.fedAny;
  }

  /** Called at the start of each download attempt with the offset it resumes from. */
  startAt(offset: number): boolean {
    if (this.broken || offset !== this.fed) {
      this.broken = true;
      return false;
    }
    return true;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.broken || this.stream.destroyed) return;
    this.fedAny = true;
    this.fed += chunk.length;
    if (!this.stream.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.stream.off("drain", done);
          this.stream.off("close", done);
          resolve();
        };
        this.stream.on("drain", done);
        this.stream.on("close", done);
      });
    }
  }

  end(): void {
    this.stream.end();
  }

  abandon(): void {
    this.broken = true;
    this.stream.destroy();
  }
}

/**
 * Download a blob into the store, verified. An interrupted download is kept
 * in tmp/partial-<hex> and resumed with a Range request — by this process
 * after a dropped connection, or by the next pull after a kill.
 */
async function downloadBlob(
  store: Store,
  client: RegistryClient,
  repo: string,
  desc: Descriptor,
  reporter: PullReporter,
  tee?: Tee,
): Promise<void> {
  const id = shortId(desc.digest);
  await withLock(store.lockPath(`blob-${digestHex(desc.digest)}`), async () => {
    if (store.hasBlob(desc.digest)) return;
    const partial = store.partialBlobPath(desc.digest);
    const { length, digest } = await withRetries(
      `cannot download blob ${desc.digest} from ${client.domain}`,
      async () => {
        // Each attempt starts from what is on disk, so a retry after a dropped
        // connection and a new pull after a kill resume the same way.
        let hash = createHash("sha256");
        let offset = await resumeOffset(partial, desc.size, hash);
        let feed = tee?.startAt(offset) ? tee : undefined;
        if (offset < desc.size) {
          const response = await client.openBlob(repo, desc.digest, offset);
          if (offset > 0 && response.statusCode !== 206) {
            // The server ignored our Range header: start over.
            await truncate(partial, 0);
            hash = createHash("sha256");
            offset = 0;
            feed = undefined;
            tee?.startAt(-1);
          }
          offset = await appendBody(response, partial, offset, desc.size, hash, feed, (n) =>
            reporter.layer(id, "Downloading", n, desc.size),
          );
        }
        return { length: offset, digest: `sha256:${hash.digest("hex")}` };
      },
    );
    if (length !== desc.size || digest !== desc.digest) {
      await rm(partial, { force: true });
      throw new MiniboxError(
        `digest mismatch for blob ${desc.digest}: the registry sent ${length} bytes with digest ${digest}`,
        "the registry's copy is damaged or was tampered with",
      );
    }
    reporter.layer(id, "Verifying Checksum");
    await store.commitBlobFile(partial, desc.digest);
    reporter.layer(id, "Download complete");
  });
}

/** How much of an earlier download we can keep; feeds those bytes to the hash. */
async function resumeOffset(partial: string, size: number, hash: Hash): Promise<number> {
  let have = 0;
  try {
    have = (await stat(partial)).size;
  } catch {
    return 0;
  }
  if (have > size) {
    await truncate(partial, 0);
    return 0;
  }
  for await (const chunk of createReadStream(partial)) hash.update(chunk as Buffer);
  return have;
}

/** Stream a response body onto the end of a file (and the tee); returns the new length. */
async function appendBody(
  response: IncomingMessage,
  path: string,
  offset: number,
  limit: number,
  hash: Hash,
  tee: Tee | undefined,
  progress: (bytes: number) => void,
): Promise<number> {
  // Room for 1 MiB of writes in flight (the default is 16 KiB, less than one
  // 64 KiB socket read): the loop then goes on reading and hashing the
  // network while libuv's pool writes the file, instead of waiting for each
  // write(2) before the next read.
  const out = createWriteStream(path, { flags: "a", highWaterMark: 1 << 20 });
  let written = offset;
  let lastReport = 0;
  try {
    for await (const chunk of response) {
      const buf = chunk as Buffer;
      written += buf.length;
      if (written > limit) {
        // A registry that sends more than the manifest promised is wrong; don't fill the disk.
        throw new MiniboxError(
          `the registry sent more than the ${limit} bytes the manifest announced`,
        );
      }
      hash.update(buf);
      out.write(buf);
      if (tee) await tee.write(buf);
      // Asked only now: while the tee waited, the file may have drained
      // already, and a 'drain' that came and went would never come again
      // (the loop would wait on nothing, and node would exit mid-pull).
      if (out.writableNeedDrain) await new Promise<void>((r) => out.once("drain", () => r()));
      const now = Date.now();
      if (now - lastReport > 100) {
        lastReport = now;
        progress(written);
      }
    }
    if (!response.complete) throw new TransientError("the connection closed before the blob's end");
  } catch (err) {
    // The file holds exactly the bytes hashed (and teed): the next attempt
    // resumes from its length.
    await new Promise<void>((r) => out.end(() => r()));
    if (err instanceof TransientError || err instanceof MiniboxError) throw err;
    throw new TransientError(`download interrupted: ${(err as Error).message}`);
  }
  await new Promise<void>((resolve, reject) => {
    out.end((err?: Error | null) => (err ? reject(err) : resolve()));
  });
  progress(written);
  return written;
}

export async function mapConcurrent<T, R>(
  items: T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (next < items.length && failed === undefined) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
  return results;
}

function unique<T>(items: T[]): T[] {
  return [...new Set(items)];
}
