/**
 * The two image archive formats, as data: what `save` writes and `load`
 * reads. Pure functions only; the streaming lives in save.ts and load.ts.
 *
 * A docker-archive (`docker save` before 25) is a tar with `manifest.json`:
 *   [{"Config": "<path>", "RepoTags": ["alpine:3.8"], "Layers": ["<path>", …]}]
 * An OCI image layout (`skopeo copy … oci-archive:`) is a tar with
 * `oci-layout`, `index.json` (an OCI index naming manifests by digest) and
 * every blob under `blobs/sha256/<hex>`.
 *
 * Docker 25 writes both at once, with manifest.json's paths pointing into
 * blobs/: one file that every tool reads. minibox's `save` does the same.
 */
import { MiniboxError } from "../errors.js";
import { digestHex } from "./digest.js";
import { familiarString, formatReference, parseReference } from "./reference.js";

export const OCI_LAYOUT_FILE = "oci-layout";
export const OCI_LAYOUT = { imageLayoutVersion: "1.0.0" };
/** containerd's (and Docker 25's) annotation for the full image name. */
export const ANNOTATION_IMAGE_NAME = "io.containerd.image.name";
/** OCI's: a reference "name" inside the layout; Docker 25 puts just the tag there. */
export const ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name";

/** One image going into an archive. */
export interface ArchiveImage {
  /** Image ID = config digest. */
  id: string;
  manifest: { digest: string; size: number; mediaType: string };
  layerDigests: string[];
  /** Canonical names ("docker.io/library/alpine:3.8"), in the order asked for. */
  tags: string[];
}

export function blobName(digest: string): string {
  return `blobs/sha256/${digestHex(digest)}`;
}

/** manifest.json: paths into blobs/, tags in the familiar form Docker prints. */
export function dockerManifestJson(images: ArchiveImage[]): unknown[] {
  return images.map((image) => ({
    Config: blobName(image.id),
    RepoTags: image.tags.length ? image.tags.map(familiar) : null,
    Layers: image.layerDigests.map(blobName),
  }));
}

/**
 * `repositories`, the pre-1.10 index that old loaders read: repository →
 * tag → top layer. Loaders that know manifest.json ignore it.
 */
export function repositoriesJson(images: ArchiveImage[]): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const image of images) {
    const top = image.layerDigests[image.layerDigests.length - 1];
    if (!top) continue;
    for (const tag of image.tags) {
      const name = familiar(tag);
      const colon = name.lastIndexOf(":");
      const repo = name.slice(0, colon);
      out[repo] = { ...out[repo], [name.slice(colon + 1)]: digestHex(top) };
    }
  }
  return out;
}

/**
 * index.json: one entry per tag, as Docker 25 writes it (full name in
 * containerd's annotation, the tag alone in OCI's), and one without
 * annotations for an image saved by ID only.
 */
export function ociIndexJson(images: ArchiveImage[]): unknown {
  const manifests = images.flatMap((image) => {
    const base = { ...image.manifest };
    if (image.tags.length === 0) return [base];
    return image.tags.map((tag) => ({
      ...base,
      annotations: {
        [ANNOTATION_IMAGE_NAME]: tag,
        [ANNOTATION_REF_NAME]: parseReference(tag).tag ?? "latest",
      },
    }));
  });
  return { schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests };
}

function familiar(canonical: string): string {
  return familiarString(parseReference(canonical));
}

// ---- reading ---------------------------------------------------------------

export interface DockerArchiveEntry {
  config: string;
  repoTags: string[];
  layers: string[];
}

/** Parses manifest.json; every field is checked, since the archive is untrusted input. */
export function parseDockerManifestJson(body: Buffer): DockerArchiveEntry[] {
  const json = parseJson(body, "manifest.json");
  if (!Array.isArray(json)) throw new MiniboxError("manifest.json is not a list of images");
  return json.map((entry: Record<string, unknown>) => {
    const config = entry?.Config;
    const layers = entry?.Layers;
    const repoTags = entry?.RepoTags ?? [];
    if (
      typeof config !== "string" ||
      !Array.isArray(layers) ||
      !layers.every((l) => typeof l === "string") ||
      !Array.isArray(repoTags) ||
      !repoTags.every((t) => typeof t === "string")
    ) {
      throw new MiniboxError("manifest.json has an entry without Config, Layers or RepoTags");
    }
    return { config, layers, repoTags };
  });
}

/**
 * The canonical name an index entry gives its image, if any: containerd's
 * full-name annotation first; else OCI's ref.name when it is a full
 * reference (podman and skopeo write "localhost/app:1"; Docker 25 writes
 * only "1", which names no repository).
 */
export function nameFromAnnotations(annotations: Record<string, string> | undefined) {
  const candidates = [annotations?.[ANNOTATION_IMAGE_NAME], annotations?.[ANNOTATION_REF_NAME]];
  for (const candidate of candidates) {
    if (!candidate || !/[:/]/.test(candidate)) continue;
    try {
      const ref = parseReference(candidate);
      if (!ref.digest) return formatReference(ref);
    } catch {
      // not a reference: an OCI ref.name may be any string
    }
  }
  return undefined;
}

/** A RepoTags entry ("alpine:3.8") → canonical name; undefined if it is not a valid reference. */
export function canonicalTag(repoTag: string): string | undefined {
  try {
    const ref = parseReference(repoTag);
    return ref.digest ? undefined : formatReference(ref);
  } catch {
    return undefined;
  }
}

export function parseJson(body: Buffer, what: string): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    throw new MiniboxError(`${what} is not valid JSON`);
  }
}
