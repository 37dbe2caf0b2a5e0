/**
 * `push`: an image in the store goes to a registry, byte for byte, so its
 * manifest digest (and therefore every digest in it) stays the same.
 *
 *   1. find the image by tag and read its stored manifest (the exact bytes
 *      that were pulled or built: re-serialising would change the digest)
 *   2. for each layer, concurrently, then for the config:
 *        HEAD   — the repository already has it: "Layer already exists"
 *        mount  — another repository of this registry has it (we pulled it
 *                 from there or pushed it there): link it, "Mounted from …"
 *        upload — POST, then one PUT with the bytes, or PATCHes of
 *                 chunkSize each (Content-Range, following Location) and a
 *                 closing PUT with the digest: "Pushed"
 *   3. PUT the manifest under the tag, with its media type as Content-Type;
 *      the registry checks that every blob it names is there
 *   4. remember the repository as a source of these blobs, and the new
 *      repo digest in the image's record
 */
import { type FileHandle, open } from "node:fs/promises";
import { MiniboxError } from "../errors.js";
import { recordImageEvent } from "../events/image-events.js";
import type { CredentialStore } from "./credentials.js";
import { shortId } from "./digest.js";
import { type Descriptor, MediaType, parseManifest } from "./manifest.js";
import { mapConcurrent, type PullReporter, silentReporter } from "./pull.js";
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
import type { ImageRecord, Store } from "./store.js";

export interface PushOptions extends EndpointOptions {
  credentials: CredentialStore;
  reporter?: PullReporter;
  /** Blobs larger than this go up in PATCH chunks of this size. */
  chunkSize?: number;
}

export interface PushResult {
  tag: string;
  /** The manifest's digest, as the registry now knows it. */
  digest: string;
  /** The manifest's size in bytes. */
  size: number;
}

/** Docker pushes up to 5 layers at once; like pull, we keep to 3. */
const CONCURRENT_UPLOADS = 3;

/** Big enough that most layers go up in one request, small enough to hold in memory. */
const DEFAULT_CHUNK_SIZE = 5 * 1024 * 1024;

/** How many other repositories to try mounting a blob from before uploading it. */
const MOUNT_CANDIDATES = 3;

/** `MINIBOX_PUSH_CHUNK_SIZE` (bytes) overrides the chunk size, e.g. to test chunking with small layers. */
export function chunkSizeFromEnv(): number {
  const text = process.env.MINIBOX_PUSH_CHUNK_SIZE;
  if (!text) return DEFAULT_CHUNK_SIZE;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new MiniboxError(
      `invalid MINIBOX_PUSH_CHUNK_SIZE ${JSON.stringify(text)}`,
      "give a number of bytes",
    );
  }
  return value;
}

export async function pushImage(
  store: Store,
  ref: ImageReference,
  options: PushOptions,
): Promise<PushResult> {
  if (ref.digest) {
    throw new MiniboxError(
      `cannot push a digest reference: ${formatReference(ref)}`,
      "use NAME[:TAG]",
    );
  }
  const tag = ref.tag ?? "latest";
  const index = await store.readIndex();
  const id = index.tags[formatReference(ref)];
  const record = id ? index.images[id] : undefined;
  if (!record) {
    throw new MiniboxError(
      `an image does not exist locally with the tag: ${familiarString(ref)}`,
      `tag one with 'minibox tag IMAGE ${familiarString(ref)}' first`,
    );
  }
  const manifestBody = await store.readBlob(record.manifestDigest);
  const manifest = parseManifest(manifestBody, record.manifestMediaType);
  if (manifest.kind !== "manifest") {
    throw new MiniboxError(`image ${shortId(record.id)} is recorded with a manifest list`);
  }
  // Foreign layers (Windows base layers) are never pushed, as in Docker.
  const layers = manifest.layers.filter(
    (l) => l.mediaType !== MediaType.dockerForeignLayerGzip || !l.urls,
  );
  // Everything must be at hand before the registry sees a single request.
  for (const blob of [manifest.config, ...layers]) {
    if (!store.hasBlob(blob.digest)) {
      throw new MiniboxError(
        `blob ${blob.digest} of ${familiarString(ref)} is not in the store`,
        "pull or build the image again",
      );
    }
  }

  // A push goes to the registry itself, never to a pull-through mirror.
  const endpoint = resolveEndpoints(ref.domain, options).find((e) => !e.mirror);
  if (!endpoint) throw new MiniboxError(`no endpoint for registry ${ref.domain}`);
  const client = new RegistryClient(endpoint, await options.credentials.get(ref.domain));
  const reporter = options.reporter ?? silentReporter;
  const target: Target = {
    store,
    client,
    repo: ref.path,
    chunkSize: options.chunkSize ?? chunkSizeFromEnv(),
  };

  reporter.status(`The push refers to repository [${repositoryName(ref)}]`);
  const ids = layerIds(record, layers);
  // Docker lists the top layer first.
  const order = layers.map((_, i) => layers.length - 1 - i);
  for (const i of order) reporter.layer(ids[i] as string, "Preparing");
  for (const i of order.slice(CONCURRENT_UPLOADS)) reporter.layer(ids[i] as string, "Waiting");
  await mapConcurrent(order, CONCURRENT_UPLOADS, async (i) => {
    const id = ids[i] as string;
    const layer = layers[i] as Descriptor;
    await pushBlob(target, layer, (status, current, total) =>
      reporter.layer(id, status, current, total),
    );
  });
  await pushBlob(target, manifest.config, () => {});

  const digest = await client.putManifest(target.repo, tag, manifestBody, manifest.mediaType);
  await store.recordBlobSources(
    [manifest.config.digest, ...layers.map((l) => l.digest)],
    `${ref.domain}/${ref.path}`,
  );
  await rememberPush(store, ref, record, digest);
  reporter.status(`${tag}: digest: ${digest} size: ${manifestBody.length}`);
  return { tag, digest, size: manifestBody.length };
}

/** The pushed manifest's digest becomes one of the image's repo digests; the push is journalled. */
async function rememberPush(
  store: Store,
  ref: ImageReference,
  record: ImageRecord,
  digest: string,
): Promise<void> {
  await store.updateIndex((idx) => {
    const current = idx.images[record.id];
    const repoDigest = `${repositoryName(ref)}@${digest}`;
    if (current && !current.repoDigests.includes(repoDigest)) current.repoDigests.push(repoDigest);
  });
  await recordImageEvent(store, "push", familiarString(ref), familiarRepository(ref), record.id);
}

/**
 * Docker names a layer in push output by its diffID (the uncompressed
 * digest); the record has them in manifest order.
 */
function layerIds(record: ImageRecord, layers: Descriptor[]): string[] {
  return layers.map((layer, i) => {
    const known = record.layers.length === layers.length ? record.layers[i]?.diffId : undefined;
    return shortId(known ?? layer.digest);
  });
}

interface Target {
  store: Store;
  client: RegistryClient;
  repo: string;
  chunkSize: number;
}

type Progress = (status: string, current?: number, total?: number) => void;

/** One blob into the target repository, by whichever way costs least. */
async function pushBlob(target: Target, desc: Descriptor, show: Progress): Promise<void> {
  const { client, repo } = target;
  // A failed attempt starts over with a new session: a half-sent one cannot be trusted.
  await withRetries(`cannot reach registry ${client.domain}`, async () => {
    if (await client.hasBlob(repo, desc.digest)) {
      show("Layer already exists");
      return;
    }
    const mounted = await tryMount(target, desc, show);
    if (mounted === true) return;
    const location = mounted ?? (await client.startUpload(repo));
    try {
      await upload(target, desc, location, show);
    } catch (err) {
      throw explainUploadError(err, desc);
    }
    show("Pushed");
  });
}

/**
 * Ask the registry to mount the blob from repositories of the same
 * registry where we have seen it. Returns true when mounted, or the upload
 * session the last refused mount opened (to use instead of a new one).
 */
async function tryMount(
  target: Target,
  desc: Descriptor,
  show: Progress,
): Promise<true | string | undefined> {
  const { client, repo, store } = target;
  const prefix = `${client.domain}/`;
  const candidates = (await store.blobSources(desc.digest))
    .filter((source) => source.startsWith(prefix) && source !== `${prefix}${repo}`)
    .map((source) => source.slice(prefix.length))
    .slice(0, MOUNT_CANDIDATES);
  let session: string | undefined;
  for (const from of candidates) {
    if (session) await client.cancelUpload(repo, session);
    session = undefined;
    try {
      const answer = await client.mountBlob(repo, desc.digest, from);
      if (answer.mounted) {
        show(`Mounted from ${from}`);
        return true;
      }
      session = answer.location;
    } catch (err) {
      // Not allowed to read the source, or the registry refuses mounts:
      // the ordinary upload is still possible.
      if (err instanceof TransientError) throw err;
    }
  }
  return session;
}

/** Send the blob's bytes: in one PUT when small, else in PATCH chunks and a closing PUT. */
async function upload(
  target: Target,
  desc: Descriptor,
  start: string,
  show: Progress,
): Promise<void> {
  const { client, repo, chunkSize, store } = target;
  let file: FileHandle;
  try {
    file = await open(store.blobPath(desc.digest), "r");
  } catch {
    throw new MiniboxError(`blob ${desc.digest} is missing from the store`, "pull the image again");
  }
  try {
    const size = (await file.stat()).size;
    if (size !== desc.size) {
      throw new MiniboxError(
        `blob ${desc.digest} in the store has ${size} bytes, its manifest says ${desc.size}`,
        "the local copy is damaged; pull or build the image again",
      );
    }
    if (size <= chunkSize) {
      show("Pushing", 0, size);
      await client.finishUpload(repo, start, desc.digest, await readAt(file, 0, size));
      show("Pushing", size, size);
      return;
    }
    let location = start;
    for (let offset = 0; offset < size; ) {
      const chunk = await readAt(file, offset, Math.min(chunkSize, size - offset));
      location = await client.uploadChunk(repo, location, chunk, offset);
      offset += chunk.length;
      show("Pushing", offset, size);
    }
    await client.finishUpload(repo, location, desc.digest);
  } finally {
    await file.close();
  }
}

async function readAt(file: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await file.read(buffer, done, length - done, offset + done);
    if (bytesRead === 0) throw new MiniboxError("a blob in the store shrank while being pushed");
    done += bytesRead;
  }
  return buffer;
}

/** The registry's verdict on our bytes, in words a user can act on. */
function explainUploadError(err: unknown, desc: Descriptor): unknown {
  if (err instanceof RegistryError && (err.has("DIGEST_INVALID") || err.has("SIZE_INVALID"))) {
    return new MiniboxError(
      `the registry rejected blob ${desc.digest}: its content does not match its digest`,
      "the local copy is damaged; pull or build the image again",
    );
  }
  return err;
}
