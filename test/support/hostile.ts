// Hostile inputs for the security tests: tars with entries that try to leave
// the directory they are unpacked into, images built around such layers or
// around absurd configs, and a reader for the tars minibox writes (export).
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import path from "node:path";
import tar from "tar-stream";
import {
  MT_OCI_CONFIG,
  MT_OCI_MANIFEST,
  OciLayout,
  type PushOptions,
  skopeoPush,
} from "./fixtures.js";
import { makeTar, type TestEntry } from "./layer-tar.js";
import { MINIBOX_JS, type Sandbox } from "./minibox.js";
import { clientEnv, testEnv } from "./testenv.js";
import { sha256Digest } from "./util.js";

export { makeTar, type TestEntry };

const PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** One entry of a tar as read back: header fields and the body. */
export interface ReadEntry {
  name: string;
  type: string;
  linkname?: string | null;
  body: Buffer;
}

export async function readTar(bytes: Buffer): Promise<ReadEntry[]> {
  const extract = tar.extract();
  const out: ReadEntry[] = [];
  const done = new Promise<void>((resolve, reject) => {
    extract.on("entry", (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on("data", (c) => chunks.push(c as Buffer));
      stream.on("end", () => {
        out.push({
          name: header.name,
          type: header.type ?? "unknown",
          linkname: header.linkname,
          body: Buffer.concat(chunks),
        });
        next();
      });
    });
    extract.on("finish", resolve);
    extract.on("error", reject);
  });
  extract.end(bytes);
  await done;
  return out;
}

/** `minibox export NAME` with stdout straight into `file` (bytes, not text). */
export function exportToFile(box: Sandbox, name: string, file: string) {
  const fd = openSync(file, "w");
  const child = spawn(
    process.execPath,
    [MINIBOX_JS, "--root", box.root, "--config", box.config, "export", name],
    { stdio: ["ignore", fd, "pipe"] },
  );
  closeSync(fd);
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  return new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on("close", (code) => resolve({ code, stderr })),
  );
}

/** An image config as a hostile author writes it: `config` fields merged over a plain one. */
export interface HostileImage {
  /** Uncompressed layer tars, bottom first. */
  layers: Buffer[];
  config?: Record<string, unknown>;
}

/** Writes the image as an OCI layout (tag "latest") under `dir`; returns its directory. */
export async function writeHostileLayout(dir: string, image: HostileImage): Promise<string> {
  const layout = await new OciLayout(dir).init();
  const descs = [];
  for (const layer of image.layers)
    descs.push(await layout.putBlob(layer, "application/vnd.oci.image.layer.v1.tar"));
  const config = await layout.putJson(
    {
      architecture: "amd64",
      os: "linux",
      config: { Env: [PATH_ENV], Cmd: ["sh"], ...image.config },
      rootfs: { type: "layers", diff_ids: image.layers.map((l) => sha256Digest(l)) },
      history: image.layers.map(() => ({ created_by: "minibox test: hostile layer" })),
    },
    MT_OCI_CONFIG,
  );
  const manifest = await layout.putJson(
    { schemaVersion: 2, mediaType: MT_OCI_MANIFEST, config, layers: descs },
    MT_OCI_MANIFEST,
  );
  await layout.setRef(manifest);
  return dir;
}

/** Pushes the layout to the test registry as REPO:latest with skopeo; the reference to pull. */
export async function pushHostile(layoutDir: string, repo: string): Promise<string> {
  const env = testEnv();
  const opts: PushOptions = {
    anon: env.registries.anon,
    authenticated: env.registries.token,
    user: env.user,
    password: env.password,
    env: clientEnv(env),
    storageDir: env.storageDir,
  };
  await skopeoPush({ key: repo, repo, layoutDir, format: "oci" }, opts);
  return `${env.registries.anon}/${repo}:latest`;
}

/** The OCI layout as one tar (an OCI archive, what `load` reads). */
export async function layoutArchive(layoutDir: string): Promise<Buffer> {
  const { readdir, readFile } = await import("node:fs/promises");
  const entries: TestEntry[] = [];
  const walk = async (rel: string) => {
    for (const d of await readdir(path.join(layoutDir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) {
        entries.push({ name: `${r}/`, type: "directory" });
        await walk(r);
      } else entries.push({ name: r, content: await readFile(path.join(layoutDir, r)) });
    }
  };
  await walk("");
  return makeTar(entries);
}

/** The fixtures' busybox rootfs as an uncompressed layer: the bottom of a hostile image that must run. */
export async function busyboxLayer(): Promise<Buffer> {
  const { buildTar, busyboxRootfsEntries, sortEntries } = await import("./fixtures.js");
  return buildTar(sortEntries(await busyboxRootfsEntries()));
}
