// The shape handed from the global setup to test workers (via vitest's
// provide/inject) and to benchmarks (via scripts/test-env.ts). It must stay
// JSON-serialisable: it crosses process boundaries.

/** One platform-specific image as a puller sees it. */
export interface FixtureImage {
  repo: string;
  tag: string;
  /** Digest of the manifest bytes the registry serves for repo:tag. */
  manifestDigest: string;
  /** Media type of that manifest (OCI or Docker schema2). */
  manifestMediaType: string;
  configDigest: string;
  /** Uncompressed layer digests, bottom layer first (= config rootfs.diff_ids). */
  diffIds: string[];
  /** Compressed layer blob digests as listed in the manifest, bottom first. */
  layerDigests: string[];
  /** Local OCI image layout the image was pushed from (tag "latest"). */
  layoutDir: string;
}

/** An OCI image index (multi-platform) fixture. */
export interface FixtureIndex {
  repo: string;
  tag: string;
  indexDigest: string;
  indexMediaType: string;
  /** Local OCI image layout whose "latest" ref is the index. */
  layoutDir: string;
  /** One entry per platform, in index order. */
  manifests: Array<{
    os: string;
    architecture: string;
    manifestDigest: string;
    configDigest: string;
    diffIds: string[];
    layerDigests: string[];
  }>;
}

export interface TestFixtures {
  /** fixtures/base:latest — busybox rootfs, one layer, OCI manifest. */
  base: FixtureImage;
  /** fixtures/layered:latest — base + big random layer + whiteouts layer. */
  layered: FixtureImage & {
    /** /data/big.bin: size and sha256 hex of its contents. */
    bigFile: { path: string; size: number; sha256: string };
    /** Paths that must be gone / present after stacking the three layers. */
    expectAbsent: string[];
    expectPresent: string[];
  };
  /** fixtures/multi:latest — index: linux/amd64 (= base manifest) + linux/arm64. */
  multi: FixtureIndex & { amd64ManifestDigest: string; arm64ManifestDigest: string };
  /** fixtures/arm64only:latest — index with a single linux/arm64 manifest. */
  arm64only: FixtureIndex & { arm64ManifestDigest: string };
  /** fixtures/schema2:latest — the base image as a Docker schema2 manifest. */
  schema2: FixtureImage;
  /** fixtures/oci:latest — the base image as an OCI manifest. */
  oci: FixtureImage;
  /** fixtures/corrupt-gzip:latest — layer blob is a gzip header + garbage (digest correct). */
  corruptGzip: FixtureImage;
  /** fixtures/tampered:latest — the registry serves different bytes for the layer blob. */
  tampered: FixtureImage & {
    /** sha256 digest of the bytes the registry actually serves for layerDigests[0]. */
    servedDigest: string;
    /** Path of the overwritten blob in the registry storage. */
    blobDataPath: string;
  };
  /** fixtures/evil:latest — layer has hello.txt then "../evil-escape.txt". */
  evil: FixtureImage & { escapeEntry: string };
  /** private/base:latest — base image; token registry refuses anonymous pulls. */
  privateBase: FixtureImage;
}

export interface TestEnv {
  /** Per-run scratch directory (test/.work/<pid>); tests may create subdirs. */
  workDir: string;
  /** host:port of each registry; all three share one storage. */
  registries: { anon: string; token: string; basic: string };
  /** Base URL of the token server, e.g. http://127.0.0.1:PORT (GET /stats, POST /stats/reset). */
  tokenServer: string;
  /** Credentials valid on both the token server and the htpasswd registry. */
  user: string;
  password: string;
  /** Registry filesystem storage root shared by the three registries. */
  storageDir: string;
  /** Empty containers auth file: pass as REGISTRY_AUTH_FILE so skopeo ignores host logins. */
  authFile: string;
  fixtures: TestFixtures;
  /** Wall-clock milliseconds the setup took (fixtures + servers + pushes). */
  setupMs: number;
}
