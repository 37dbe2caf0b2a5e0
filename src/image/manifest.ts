/**
 * Manifest formats: Docker schema2 and OCI, single-platform manifests and
 * multi-platform indexes (Docker's "manifest list"). Both families have the
 * same shape; they differ in media types. Everything a registry sends is
 * untrusted input, so it is checked here before anything else reads it.
 */
import { MiniboxError } from "../errors.js";
import { assertDigest } from "./digest.js";

export const MediaType = {
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  dockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerForeignLayerGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
} as const;

/**
 * Everything we can read, most preferred first. Registries pick what to send
 * from this list — and distribution 2.8 answers 404 for an OCI manifest unless
 * its type is listed, so all of them are always sent.
 */
export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.dockerManifestList,
  MediaType.ociManifest,
  MediaType.dockerManifest,
].join(", ");

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
  urls?: string[];
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  "os.version"?: string;
}

export interface ImageManifest {
  kind: "manifest";
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ImageIndexManifest {
  kind: "index";
  mediaType: string;
  manifests: Descriptor[];
}

export type AnyManifest = ImageManifest | ImageIndexManifest;

/**
 * Parse a manifest body. The media type comes from the Content-Type header
 * first (manifests written by some tools, umoci among them, have no
 * `mediaType` field), then from the body, then from its shape.
 */
export function parseManifest(body: Buffer, contentType: string | undefined): AnyManifest {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch {
    throw new MiniboxError("registry sent a manifest that is not valid JSON");
  }
  const header = contentType?.split(";")[0]?.trim();
  const declared = typeof json.mediaType === "string" ? json.mediaType : undefined;
  let mediaType =
    header && header !== "application/json" && header !== "text/plain" ? header : declared;
  if (!mediaType) {
    if (Array.isArray(json.manifests)) mediaType = MediaType.ociIndex;
    else if (Array.isArray(json.layers)) mediaType = MediaType.ociManifest;
  }
  switch (mediaType) {
    case MediaType.ociIndex:
    case MediaType.dockerManifestList:
      return { kind: "index", mediaType, manifests: descriptors(json.manifests, "manifest") };
    case MediaType.ociManifest:
    case MediaType.dockerManifest:
      return {
        kind: "manifest",
        mediaType,
        config: descriptor(json.config, "config"),
        layers: descriptors(json.layers, "layer"),
      };
    case MediaType.dockerSchema1:
    case MediaType.dockerSchema1Signed:
      throw new MiniboxError(
        "this image uses Docker's deprecated schema 1 manifest, which minibox does not support",
        "push it again with a current client",
      );
    default:
      throw new MiniboxError(`unsupported manifest media type ${JSON.stringify(mediaType)}`);
  }
}

function descriptors(value: unknown, what: string): Descriptor[] {
  if (!Array.isArray(value)) throw new MiniboxError(`manifest has no ${what} list`);
  return value.map((d) => descriptor(d, what));
}

function descriptor(value: unknown, what: string): Descriptor {
  if (typeof value !== "object" || value === null) {
    throw new MiniboxError(`manifest has an invalid ${what} descriptor`);
  }
  const d = value as Record<string, unknown>;
  const size = d.size;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new MiniboxError(`manifest ${what} descriptor has an invalid size`);
  }
  return {
    ...(d as unknown as Descriptor),
    mediaType: typeof d.mediaType === "string" ? d.mediaType : "",
    digest: assertDigest(d.digest, what),
    size,
  };
}

/** The platform minibox runs on, in OCI's vocabulary (Node's "x64" is OCI's "amd64"). */
export function hostPlatform(): Platform {
  const arch: Record<string, Platform> = {
    x64: { os: "linux", architecture: "amd64" },
    arm64: { os: "linux", architecture: "arm64", variant: "v8" },
    arm: { os: "linux", architecture: "arm", variant: "v7" },
    ia32: { os: "linux", architecture: "386" },
    ppc64: { os: "linux", architecture: "ppc64le" },
    s390x: { os: "linux", architecture: "s390x" },
    riscv64: { os: "linux", architecture: "riscv64" },
  };
  return arch[process.arch] ?? { os: "linux", architecture: process.arch };
}

/** "linux/arm64/v8" → Platform; for `pull --platform`. */
export function parsePlatform(text: string): Platform {
  const [os, architecture, variant] = text.split("/");
  if (!os || !architecture) {
    throw new MiniboxError(
      `invalid platform ${JSON.stringify(text)}`,
      "use OS/ARCH[/VARIANT], e.g. linux/amd64",
    );
  }
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

/**
 * Choose the index entry for `want`, like containerd's platform matcher: OS
 * and architecture must match; a variant is compared only when both sides
 * name one (arm64 images often omit "v8"). Attestation manifests (platform
 * unknown/unknown) never match.
 */
export function selectPlatform(index: ImageIndexManifest, want: Platform): Descriptor {
  const candidates = index.manifests.filter(
    (d) =>
      d.platform?.os === want.os &&
      d.platform.architecture === want.architecture &&
      (!want.variant || !d.platform.variant || d.platform.variant === want.variant),
  );
  const exact = candidates.find((d) => d.platform?.variant === want.variant);
  const chosen = exact ?? candidates[0];
  if (!chosen) {
    const offered = index.manifests
      .map((d) => (d.platform ? formatPlatform(d.platform) : "unknown"))
      .filter((p) => p !== "unknown/unknown")
      .join(", ");
    throw new MiniboxError(
      `no image for platform ${formatPlatform(want)} in this manifest list (it offers: ${offered || "nothing"})`,
      "pick another tag or pass --platform",
    );
  }
  return chosen;
}

/** The parts of an image config (OCI image-spec "config.json") minibox reads. */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config?: {
    User?: string;
    ExposedPorts?: Record<string, object>;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Volumes?: Record<string, object>;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
    StopSignal?: string;
    [key: string]: unknown;
  };
  rootfs: { type: string; diff_ids: string[] };
  history?: {
    created?: string;
    created_by?: string;
    author?: string;
    comment?: string;
    empty_layer?: boolean;
  }[];
}

export function parseImageConfig(body: Buffer): ImageConfig {
  let json: ImageConfig;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch {
    throw new MiniboxError("image config is not valid JSON");
  }
  if (!json.rootfs || !Array.isArray(json.rootfs.diff_ids)) {
    throw new MiniboxError("image config has no rootfs.diff_ids");
  }
  json.rootfs.diff_ids.forEach((d) => {
    assertDigest(d, "diff_id");
  });
  return json;
}
