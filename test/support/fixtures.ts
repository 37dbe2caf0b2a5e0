// Test images, BUILT here from the host's busybox-static and pushed with an
// independent client (skopeo), never downloaded: tests must run offline and the
// bytes must be known exactly so tests can compare digests.
//
// Everything is deterministic (fixed mtimes, sorted tar entries, gzip with a
// zero mtime) except the 20 MB random layer of fixtures/layered, which is
// random on purpose so it is incompressible and no cache can fake it.
import { randomBytes } from "node:crypto";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import zlib from "node:zlib";
import tar, { type Header } from "tar-stream";
import type { FixtureImage, FixtureIndex, TestFixtures } from "./types.js";
import { httpRequest, run, sha256, sha256Digest } from "./util.js";

export const MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
export const MT_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
export const MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
export const MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";

/** Every manifest type a modern client accepts (distribution 2.8 hides OCI ones otherwise). */
export const MANIFEST_ACCEPT = [
  MT_OCI_INDEX,
  MT_OCI_MANIFEST,
  MT_DOCKER_LIST,
  MT_DOCKER_MANIFEST,
].join(", ");

/** Fixed timestamp for tar entries and image configs: same bytes on every run. */
const EPOCH = new Date("2024-01-01T00:00:00Z");
const CREATED = EPOCH.toISOString();
const PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const BUSYBOX = "/bin/busybox";
const BIG_FILE_SIZE = 20 * 1024 * 1024;
const TAG = "latest";

// ---------------------------------------------------------------------------
// tar layers

export interface TarEntry {
  name: string;
  type: "file" | "directory" | "symlink";
  mode?: number;
  content?: Buffer | string;
  linkname?: string;
  uid?: number;
  gid?: number;
}

export interface Layer {
  /** Compressed blob bytes (what the registry stores). */
  blob: Buffer;
  digest: string;
  /** sha256 of the uncompressed tar. */
  diffId: string;
  size: number;
  mediaType: string;
}

/** Writes a tar with tar-stream in the given order (callers sort when they want sorted). */
export async function buildTar(entries: readonly TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    pack.on("data", (c) => chunks.push(c as Buffer));
    pack.on("end", () => resolve(Buffer.concat(chunks)));
    pack.on("error", reject);
  });
  for (const e of entries) {
    const body = e.type === "file" ? Buffer.from(e.content ?? "") : Buffer.alloc(0);
    const header: Partial<Header> & { name: string } = {
      name: e.name,
      type: e.type,
      mode: e.mode ?? (e.type === "directory" ? 0o755 : 0o644),
      mtime: EPOCH,
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      uname: e.uid ? "" : "root",
      gname: e.gid ? "" : "root",
      linkname: e.linkname,
    };
    await new Promise<void>((resolve, reject) =>
      pack.entry(header, body, (err) => (err ? reject(err) : resolve())),
    );
  }
  pack.finalize();
  return done;
}

const gzip = promisify(zlib.gzip);

/** Sorts by path so the same inputs always give the same tar; parents sort before children. */
export function sortEntries(entries: TarEntry[]): TarEntry[] {
  return [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export async function gzipLayer(tarBytes: Buffer, level = 6): Promise<Layer> {
  // Node's gzip header has mtime 0 and a fixed OS byte, so output depends only on input + level.
  const blob = await gzip(tarBytes, { level });
  return {
    blob,
    digest: sha256Digest(blob),
    diffId: sha256Digest(tarBytes),
    size: blob.length,
    mediaType: MT_OCI_LAYER_GZIP,
  };
}

export async function makeLayer(
  entries: TarEntry[],
  opts: { sorted?: boolean; level?: number } = {},
) {
  const ordered = opts.sorted === false ? entries : sortEntries(entries);
  return gzipLayer(await buildTar(ordered), opts.level);
}

/** The busybox rootfs: /bin/busybox plus one symlink per applet, passwd/group, tmp, root. */
export async function busyboxRootfsEntries(): Promise<TarEntry[]> {
  const busybox = await readFile(BUSYBOX);
  const { stdout } = await run(BUSYBOX, ["--list"]);
  const applets = [...new Set(stdout.split("\n").map((s) => s.trim()))].filter(
    (a) => a !== "" && a !== "busybox" && !a.includes("/"),
  );
  if (!applets.includes("sh")) applets.push("sh");
  const entries: TarEntry[] = [
    { name: "bin/", type: "directory" },
    { name: "bin/busybox", type: "file", mode: 0o755, content: busybox },
    // Empty mount points: a runtime mounts /proc, /dev, /sys onto these.
    { name: "dev/", type: "directory" },
    { name: "proc/", type: "directory", mode: 0o555 },
    { name: "sys/", type: "directory", mode: 0o555 },
    { name: "etc/", type: "directory" },
    {
      name: "etc/passwd",
      type: "file",
      content:
        "root:x:0:0:root:/root:/bin/sh\n" +
        "app:x:1000:1000:app:/home/app:/bin/sh\n" +
        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    },
    {
      name: "etc/group",
      type: "file",
      content: "root:x:0:\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n",
    },
    {
      name: "etc/os-release",
      type: "file",
      content: 'NAME="minibox busybox"\nID=busybox\nPRETTY_NAME="busybox (minibox test image)"\n',
    },
    { name: "home/", type: "directory" },
    { name: "home/app/", type: "directory", mode: 0o750, uid: 1000, gid: 1000 },
    { name: "root/", type: "directory", mode: 0o700 },
    { name: "tmp/", type: "directory", mode: 0o1777 },
  ];
  // Relative targets so the links also resolve when the layer is inspected on the host.
  for (const a of applets) entries.push({ name: `bin/${a}`, type: "symlink", linkname: "busybox" });
  return entries;
}

// ---------------------------------------------------------------------------
// OCI image layout writer

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string };
  annotations?: Record<string, string>;
}

export class OciLayout {
  constructor(readonly dir: string) {}

  async init(): Promise<this> {
    await mkdir(path.join(this.dir, "blobs", "sha256"), { recursive: true });
    await writeFile(
      path.join(this.dir, "oci-layout"),
      JSON.stringify({ imageLayoutVersion: "1.0.0" }),
    );
    return this;
  }

  async putBlob(data: Buffer, mediaType: string): Promise<Descriptor> {
    const hex = sha256(data);
    await writeFile(path.join(this.dir, "blobs", "sha256", hex), data);
    return { mediaType, digest: `sha256:${hex}`, size: data.length };
  }

  putJson(obj: unknown, mediaType: string): Promise<Descriptor> {
    return this.putBlob(Buffer.from(JSON.stringify(obj)), mediaType);
  }

  /** index.json with a single ref (skopeo's oci:<dir>:<tag> looks the tag up by ref.name). */
  async setRef(desc: Descriptor, tag = TAG): Promise<void> {
    const { platform: _p, ...plain } = desc;
    const index = {
      schemaVersion: 2,
      manifests: [{ ...plain, annotations: { "org.opencontainers.image.ref.name": tag } }],
    };
    await writeFile(path.join(this.dir, "index.json"), JSON.stringify(index));
  }
}

interface ImageSpec {
  architecture: string;
  layers: Layer[];
  labels: Record<string, string>;
  history: string[];
}

interface WrittenImage {
  manifest: Descriptor;
  config: Descriptor;
  diffIds: string[];
  layerDigests: string[];
}

async function writeImage(layout: OciLayout, spec: ImageSpec): Promise<WrittenImage> {
  const layerDescs: Descriptor[] = [];
  for (const l of spec.layers) layerDescs.push(await layout.putBlob(l.blob, l.mediaType));
  const diffIds = spec.layers.map((l) => l.diffId);
  const config = await layout.putJson(
    {
      created: CREATED,
      architecture: spec.architecture,
      os: "linux",
      config: { Env: [PATH_ENV], Cmd: ["sh"], Labels: spec.labels },
      rootfs: { type: "layers", diff_ids: diffIds },
      history: spec.history.map((h) => ({ created: CREATED, created_by: h })),
    },
    MT_OCI_CONFIG,
  );
  const manifest = await layout.putJson(
    { schemaVersion: 2, mediaType: MT_OCI_MANIFEST, config, layers: layerDescs },
    MT_OCI_MANIFEST,
  );
  return { manifest, config, diffIds, layerDigests: layerDescs.map((d) => d.digest) };
}

async function writeIndex(
  layout: OciLayout,
  entries: Array<{ img: WrittenImage; architecture: string }>,
): Promise<Descriptor> {
  const index = await layout.putJson(
    {
      schemaVersion: 2,
      mediaType: MT_OCI_INDEX,
      manifests: entries.map((e) => ({
        ...e.img.manifest,
        platform: { architecture: e.architecture, os: "linux" },
      })),
    },
    MT_OCI_INDEX,
  );
  await layout.setRef(index);
  return index;
}

// ---------------------------------------------------------------------------
// building all fixtures

/** How one fixture gets into the registry. */
export interface PushJob {
  key: string;
  repo: string;
  layoutDir: string;
  format?: "v2s2" | "oci";
  all?: boolean;
  /** Push through the auth-enabled registry with the test credentials. */
  authenticated?: boolean;
}

export interface BuiltFixtures {
  jobs: PushJob[];
  images: Record<string, WrittenImage & { layoutDir: string }>;
  indexes: Record<
    string,
    {
      index: Descriptor;
      layoutDir: string;
      entries: Array<{ img: WrittenImage; architecture: string }>;
    }
  >;
  bigFile: { path: string; size: number; sha256: string };
  /** The fixture-specific layer bytes the registry must serve instead of the real ones. */
  tamper: { digest: string; replacement: Buffer };
  escapeEntry: string;
}

const label = (name: string) => ({
  "org.opencontainers.image.title": `minibox-fixture-${name}`,
  "org.minibox.test": "true",
});

/** Builds every fixture as an OCI image layout under `dir/<name>`. */
export async function buildFixtures(dir: string): Promise<BuiltFixtures> {
  const images: BuiltFixtures["images"] = {};
  const indexes: BuiltFixtures["indexes"] = {};
  const newLayout = (name: string) => new OciLayout(path.join(dir, name)).init();

  const baseLayer = await makeLayer(await busyboxRootfsEntries());
  const baseSpec: ImageSpec = {
    // The busybox binary is the host's, so the image is the host's platform (the VM is amd64).
    architecture: "amd64",
    layers: [baseLayer],
    labels: label("base"),
    history: ["minibox fixture: busybox-static rootfs"],
  };

  // The same bytes in several layouts (base, multi) give the same digests: that
  // is how multi's amd64 entry is exactly the base manifest.
  const baseLayout = await newLayout("base");
  const base = await writeImage(baseLayout, baseSpec);
  await baseLayout.setRef(base.manifest);
  images.base = { ...base, layoutDir: baseLayout.dir };

  // layered: base + (big random file, a file and a dir to delete) + whiteouts.
  const big = randomBytes(BIG_FILE_SIZE);
  const midLayer = await makeLayer(
    [
      { name: "data/", type: "directory" },
      { name: "data/big.bin", type: "file", content: big },
      { name: "etc/", type: "directory" },
      {
        name: "etc/todelete.txt",
        type: "file",
        content: "this file is deleted by the top layer\n",
      },
      { name: "opt/", type: "directory" },
      { name: "opt/replaced/", type: "directory" },
      { name: "opt/replaced/old.txt", type: "file", content: "hidden by an opaque whiteout\n" },
    ],
    // Random data does not compress: the fastest level gives the same size.
    { level: 1 },
  );
  const topLayer = await makeLayer([
    { name: "etc/", type: "directory" },
    { name: "etc/.wh.todelete.txt", type: "file" },
    { name: "opt/", type: "directory" },
    { name: "opt/replaced/", type: "directory" },
    { name: "opt/replaced/.wh..wh..opq", type: "file" },
    { name: "opt/replaced/new.txt", type: "file", content: "added above the opaque whiteout\n" },
  ]);
  const layeredLayout = await newLayout("layered");
  const layered = await writeImage(layeredLayout, {
    ...baseSpec,
    layers: [baseLayer, midLayer, topLayer],
    labels: label("layered"),
    history: [
      ...baseSpec.history,
      "minibox fixture: add /data/big.bin, /etc/todelete.txt, /opt/replaced/old.txt",
      "minibox fixture: whiteout /etc/todelete.txt, opaque /opt/replaced, add new.txt",
    ],
  });
  await layeredLayout.setRef(layered.manifest);
  images.layered = { ...layered, layoutDir: layeredLayout.dir };

  // arm64 image: never runnable here; a tiny layer is enough.
  const armSpec: ImageSpec = {
    architecture: "arm64",
    layers: [await makeLayer([{ name: "ARCH", type: "file", content: "arm64\n" }])],
    labels: label("arm64"),
    history: ["minibox fixture: arm64 placeholder"],
  };

  const multiLayout = await newLayout("multi");
  const multiEntries = [
    { img: await writeImage(multiLayout, baseSpec), architecture: "amd64" },
    { img: await writeImage(multiLayout, armSpec), architecture: "arm64" },
  ];
  if (multiEntries[0].img.manifest.digest !== base.manifest.digest) {
    throw new Error(
      "fixtures: multi's amd64 manifest differs from base (non-deterministic build?)",
    );
  }
  indexes.multi = {
    index: await writeIndex(multiLayout, multiEntries),
    layoutDir: multiLayout.dir,
    entries: multiEntries,
  };

  const armOnlyLayout = await newLayout("arm64only");
  const armOnlyEntries = [{ img: await writeImage(armOnlyLayout, armSpec), architecture: "arm64" }];
  indexes.arm64only = {
    index: await writeIndex(armOnlyLayout, armOnlyEntries),
    layoutDir: armOnlyLayout.dir,
    entries: armOnlyEntries,
  };

  // corrupt-gzip: a gzip magic/header, then a deflate block of the reserved
  // type 3 (byte 0x07: BFINAL=1, BTYPE=11) so every inflater fails at once,
  // followed by filler. The manifest digest is right for these bytes, so only
  // decompression can notice.
  const wouldBe = await buildTar([{ name: "never.txt", type: "file", content: "never\n" }]);
  const corruptBlob = Buffer.concat([
    Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03, 0x07]),
    Buffer.from("this is not a deflate stream. ".repeat(40)),
  ]);
  const corruptLayout = await newLayout("corrupt-gzip");
  const corrupt = await writeImage(corruptLayout, {
    ...baseSpec,
    layers: [
      {
        blob: corruptBlob,
        digest: sha256Digest(corruptBlob),
        diffId: sha256Digest(wouldBe),
        size: corruptBlob.length,
        mediaType: MT_OCI_LAYER_GZIP,
      },
    ],
    labels: label("corrupt-gzip"),
    history: ["minibox fixture: layer blob is not valid gzip"],
  });
  await corruptLayout.setRef(corrupt.manifest);
  images.corruptGzip = { ...corrupt, layoutDir: corruptLayout.dir };

  // tampered: gzip level 0 (stored blocks) makes the blob length depend only on
  // the tar length, so the replacement is a *valid* gzip'd tar of exactly the
  // same size: only a digest check can catch it, not a size or gzip check.
  const tamperedTar = (content: string) =>
    buildTar([{ name: "tampered.txt", type: "file", content }]);
  const genuine = await gzipLayer(await tamperedTar("genuine content, served as pushed\n"), 0);
  const forged = await gzipLayer(await tamperedTar("FORGED content, NOT what was pushed\n"), 0);
  if (genuine.size !== forged.size) throw new Error("fixtures: tampered blobs differ in size");
  const tamperedLayout = await newLayout("tampered");
  const tampered = await writeImage(tamperedLayout, {
    ...baseSpec,
    layers: [genuine],
    labels: label("tampered"),
    history: ["minibox fixture: registry will serve other bytes for this layer"],
  });
  await tamperedLayout.setRef(tampered.manifest);
  images.tampered = { ...tampered, layoutDir: tamperedLayout.dir };

  // evil: a normal file first, then a path escaping the rootfs. Not sorted:
  // the order is the point (the unpacker has already started writing).
  const escapeEntry = "../evil-escape.txt";
  const evilLayout = await newLayout("evil");
  const evil = await writeImage(evilLayout, {
    ...baseSpec,
    layers: [
      await makeLayer(
        [
          { name: "hello.txt", type: "file", content: "hello\n" },
          { name: escapeEntry, type: "file", content: "escaped the rootfs\n" },
        ],
        { sorted: false },
      ),
    ],
    labels: label("evil"),
    history: ["minibox fixture: path traversal entry"],
  });
  await evilLayout.setRef(evil.manifest);
  images.evil = { ...evil, layoutDir: evilLayout.dir };

  const jobs: PushJob[] = [
    { key: "base", repo: "fixtures/base", layoutDir: baseLayout.dir },
    { key: "layered", repo: "fixtures/layered", layoutDir: layeredLayout.dir },
    { key: "multi", repo: "fixtures/multi", layoutDir: multiLayout.dir, all: true },
    { key: "arm64only", repo: "fixtures/arm64only", layoutDir: armOnlyLayout.dir, all: true },
    { key: "schema2", repo: "fixtures/schema2", layoutDir: baseLayout.dir, format: "v2s2" },
    { key: "oci", repo: "fixtures/oci", layoutDir: baseLayout.dir, format: "oci" },
    { key: "corruptGzip", repo: "fixtures/corrupt-gzip", layoutDir: corruptLayout.dir },
    { key: "tampered", repo: "fixtures/tampered", layoutDir: tamperedLayout.dir },
    { key: "evil", repo: "fixtures/evil", layoutDir: evilLayout.dir },
    {
      key: "privateBase",
      repo: "private/base",
      layoutDir: baseLayout.dir,
      authenticated: true,
    },
  ];

  return {
    jobs,
    images,
    indexes,
    bigFile: { path: "/data/big.bin", size: big.length, sha256: sha256(big) },
    tamper: { digest: genuine.digest, replacement: forged.blob },
    escapeEntry,
  };
}

// ---------------------------------------------------------------------------
// pushing

export interface PushOptions {
  /** host:port of a registry without auth (storage is shared, so it serves all). */
  anon: string;
  /** host:port of a registry with auth, used for `authenticated` jobs. */
  authenticated: string;
  user: string;
  password: string;
  /** Environment for skopeo (REGISTRY_AUTH_FILE, TMPDIR). */
  env: NodeJS.ProcessEnv;
  /** Registry filesystem storage root (for tampering). */
  storageDir: string;
}

/** Pushes one OCI layout with skopeo, an independent client. */
export async function skopeoPush(job: PushJob, opts: PushOptions): Promise<void> {
  const host = job.authenticated ? opts.authenticated : opts.anon;
  const args = ["--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false"];
  if (job.format) args.push("--format", job.format);
  if (job.all) args.push("--all");
  if (job.authenticated) args.push("--dest-creds", `${opts.user}:${opts.password}`);
  args.push(`oci:${job.layoutDir}:${TAG}`, `docker://${host}/${job.repo}:${TAG}`);
  await run("skopeo", args, { env: opts.env });
}

/** Fetches repo:tag's manifest from a registry without auth, as any client would. */
export async function fetchManifest(
  host: string,
  repo: string,
  ref: string,
): Promise<{ digest: string; mediaType: string; body: Buffer }> {
  const res = await httpRequest(`http://${host}/v2/${repo}/manifests/${ref}`, {
    headers: { Accept: MANIFEST_ACCEPT },
  });
  if (res.status !== 200) {
    throw new Error(`GET ${repo}:${ref} manifest from ${host}: HTTP ${res.status} ${res.body}`);
  }
  const digest = sha256Digest(res.body);
  const header = res.headers["docker-content-digest"];
  if (header && header !== digest)
    throw new Error(`${repo}:${ref}: digest header ${header} != ${digest}`);
  return { digest, mediaType: String(res.headers["content-type"] ?? ""), body: res.body };
}

/** Path of a blob's bytes in distribution's filesystem storage driver layout. */
export function registryBlobPath(storageDir: string, digest: string): string {
  const hex = digest.replace(/^sha256:/, "");
  return path.join(
    storageDir,
    "docker",
    "registry",
    "v2",
    "blobs",
    "sha256",
    hex.slice(0, 2),
    hex,
    "data",
  );
}

/** Overwrites a stored blob with other bytes of the same length (registry then serves them as-is). */
export async function tamperBlob(storageDir: string, digest: string, replacement: Buffer) {
  const file = registryBlobPath(storageDir, digest);
  const st = await stat(file);
  if (st.size !== replacement.length) {
    throw new Error(`tamper: ${digest} is ${st.size} bytes, replacement ${replacement.length}`);
  }
  await writeFile(file, replacement);
  return file;
}

/** Runs async jobs with at most `limit` in flight (skopeo processes on a 2-core VM). */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  });
  await Promise.all(workers);
}

/**
 * Pushes every fixture, tampers the tampered blob, and reads back what the
 * registry serves, returning the expectations the tests compare against.
 */
export async function publishFixtures(
  built: BuiltFixtures,
  opts: PushOptions,
): Promise<TestFixtures> {
  // Base first so the shared busybox layer is uploaded once; the rest in parallel.
  const [first, ...rest] = built.jobs;
  await skopeoPush(first, opts);
  await pool(rest, 4, (job) => skopeoPush(job, opts));

  const blobDataPath = await tamperBlob(
    opts.storageDir,
    built.tamper.digest,
    built.tamper.replacement,
  );

  const image = async (key: string): Promise<FixtureImage> => {
    const job = mustFind(built.jobs, key);
    const local = built.images[key] ?? built.images[layoutKey(built, job.layoutDir)];
    const served = await fetchManifest(opts.anon, job.repo, TAG);
    const manifest = JSON.parse(served.body.toString()) as {
      config: { digest: string };
      layers: Array<{ digest: string }>;
    };
    // Only a format conversion may change the manifest; otherwise what we
    // wrote must be what is served, or the expected digests would be lies.
    if (!job.format || job.format === "oci") {
      if (served.digest !== local.manifest.digest) {
        throw new Error(`${job.repo}: served ${served.digest}, built ${local.manifest.digest}`);
      }
    }
    return {
      repo: job.repo,
      tag: TAG,
      manifestDigest: served.digest,
      manifestMediaType: served.mediaType,
      configDigest: manifest.config.digest,
      diffIds: local.diffIds,
      layerDigests: manifest.layers.map((l) => l.digest),
      layoutDir: job.layoutDir,
    };
  };

  const index = async (key: string): Promise<FixtureIndex> => {
    const job = mustFind(built.jobs, key);
    const local = built.indexes[key];
    const served = await fetchManifest(opts.anon, job.repo, TAG);
    if (served.digest !== local.index.digest) {
      throw new Error(`${job.repo}: served index ${served.digest}, built ${local.index.digest}`);
    }
    return {
      repo: job.repo,
      tag: TAG,
      indexDigest: served.digest,
      indexMediaType: served.mediaType,
      layoutDir: local.layoutDir,
      manifests: local.entries.map((e) => ({
        os: "linux",
        architecture: e.architecture,
        manifestDigest: e.img.manifest.digest,
        configDigest: e.img.config.digest,
        diffIds: e.img.diffIds,
        layerDigests: e.img.layerDigests,
      })),
    };
  };

  const digestOf = (ix: FixtureIndex, arch: string) => {
    const m = ix.manifests.find((e) => e.architecture === arch);
    if (!m) throw new Error(`${ix.repo}: no ${arch} entry`);
    return m.manifestDigest;
  };

  const multi = await index("multi");
  const arm64only = await index("arm64only");
  const layered = await image("layered");
  const tampered = await image("tampered");
  const evil = await image("evil");
  return {
    base: await image("base"),
    layered: {
      ...layered,
      bigFile: built.bigFile,
      expectAbsent: ["/etc/todelete.txt", "/opt/replaced/old.txt"],
      expectPresent: ["/opt/replaced/new.txt", "/data/big.bin", "/bin/busybox", "/bin/sh"],
    },
    multi: {
      ...multi,
      amd64ManifestDigest: digestOf(multi, "amd64"),
      arm64ManifestDigest: digestOf(multi, "arm64"),
    },
    arm64only: { ...arm64only, arm64ManifestDigest: digestOf(arm64only, "arm64") },
    schema2: await image("schema2"),
    oci: await image("oci"),
    corruptGzip: await image("corruptGzip"),
    tampered: {
      ...tampered,
      servedDigest: sha256Digest(built.tamper.replacement),
      blobDataPath,
    },
    evil: { ...evil, escapeEntry: built.escapeEntry },
    privateBase: await image("privateBase"),
  };
}

function mustFind(jobs: PushJob[], key: string): PushJob {
  const job = jobs.find((j) => j.key === key);
  if (!job) throw new Error(`no fixture ${key}`);
  return job;
}

/** Fixtures pushed from another fixture's layout (schema2, oci, private) use its local image. */
function layoutKey(built: BuiltFixtures, layoutDir: string): string {
  const k = Object.keys(built.images).find((key) => built.images[key].layoutDir === layoutDir);
  if (!k) throw new Error(`no image built in ${layoutDir}`);
  return k;
}
