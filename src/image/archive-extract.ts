/**
 * Reading an image archive (a tar, maybe gzip-compressed) into a staging
 * directory: every regular file is written out and hashed on the way, links
 * are recorded by archive path. A file named blobs/sha256/<hex> must have
 * that digest, so a damaged blob is caught before anything reads it.
 * Nothing is written outside the staging directory: files get numbered
 * names there, whatever the archive calls them.
 */
import { createHash } from "node:crypto";
import { createWriteStream, readFileSync } from "node:fs";
import { join, posix } from "node:path";
import { pipeline, Readable } from "node:stream";
import { pipeline as pipelineAsync } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import tar from "tar-stream";
import { MiniboxError } from "../errors.js";
import { detectCompression } from "./compression.js";
import { digestHex } from "./digest.js";
import type { Descriptor } from "./manifest.js";

/** A regular file of the archive, as extracted into staging. */
export interface ArchiveFile {
  path: string;
  size: number;
  digest: string;
}

export class Archive {
  readonly files = new Map<string, ArchiveFile>();
  /** Symlinks and hard links, already resolved to archive paths. */
  readonly links = new Map<string, string>();

  /** The file at an archive path, following links (podman writes legacy paths as symlinks). */
  get(name: string): ArchiveFile | undefined {
    let path = archivePath(name);
    for (let hops = 0; path !== undefined && hops < 16; hops++) {
      const file = this.files.get(path);
      if (file) return file;
      path = this.links.get(path);
    }
    return undefined;
  }

  require(name: string, what: string): ArchiveFile {
    const file = this.get(name);
    if (!file) throw new MiniboxError(`the archive lacks ${what} (${JSON.stringify(name)})`);
    return file;
  }

  blob(desc: Descriptor, what: string): ArchiveFile {
    const file = this.require(`blobs/sha256/${digestHex(desc.digest)}`, `the ${what} blob`);
    if (file.digest !== desc.digest || file.size !== desc.size) {
      throw new MiniboxError(
        `${what} blob ${desc.digest} does not match its descriptor (size ${file.size}, digest ${file.digest})`,
      );
    }
    return file;
  }
}

/** "./a//b/" → "a/b"; undefined for a path that leaves the archive. */
function archivePath(name: string): string | undefined {
  const path = posix.normalize(name.replace(/^\/+/, "")).replace(/\/+$/, "");
  if (path === ".." || path.startsWith("../")) return undefined;
  return path === "." ? "" : path;
}

const BLOB_PATH = /^blobs\/sha256\/([a-f0-9]{64})$/;

export async function extractArchive(input: Readable, staging: string): Promise<Archive> {
  const archive = new Archive();
  const extract = tar.extract();
  let count = 0;
  let current: Promise<void> = Promise.resolve();
  extract.on("entry", (header, data, next) => {
    current = (async () => {
      const name = archivePath(header.name);
      if (name === undefined || name === "") {
        await drain(data as AsyncIterable<Buffer>);
        return;
      }
      if (header.type === "file" || header.type === "contiguous-file") {
        const path = join(staging, `f${count++}`);
        const hash = createHash("sha256");
        let size = 0;
        await pipelineAsync(
          data as unknown as AsyncIterable<Buffer>,
          async function* (source: AsyncIterable<unknown>) {
            for await (const item of source) {
              const chunk = item as Buffer;
              hash.update(chunk);
              size += chunk.length;
              yield chunk;
            }
          },
          createWriteStream(path, { mode: 0o600 }),
        );
        const digest = `sha256:${hash.digest("hex")}`;
        const named = BLOB_PATH.exec(name)?.[1];
        if (named && `sha256:${named}` !== digest) {
          throw new MiniboxError(
            `blob sha256:${named} is corrupt: its content has digest ${digest}`,
            "the archive was damaged; save it again",
          );
        }
        archive.files.set(name, { path, size, digest });
        return;
      }
      await drain(data as AsyncIterable<Buffer>);
      if (header.type === "symlink" && header.linkname) {
        const target = archivePath(
          header.linkname.startsWith("/")
            ? header.linkname
            : posix.join(posix.dirname(name), header.linkname),
        );
        if (target !== undefined) archive.links.set(name, target);
      } else if (header.type === "link" && header.linkname) {
        const target = archivePath(header.linkname);
        if (target !== undefined) archive.links.set(name, target);
      }
    })();
    current.then(() => next(), next);
  });
  try {
    await pipelineAsync(
      input as unknown as AsyncIterable<Buffer>,
      decompressArchive,
      extract as unknown as NodeJS.WritableStream,
    );
    await current;
  } catch (err) {
    await current.catch(() => {});
    throw err;
  }
  return archive;
}

/** A pipeline stage: the tarball itself may be gzip-compressed (`docker save | gzip`). */
async function* decompressArchive(source: AsyncIterable<unknown>): AsyncGenerator<Buffer> {
  const iterator = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let length = 0;
  while (length < 6) {
    const next = await iterator.next();
    if (next.done) break;
    head.push(next.value);
    length += next.value.length;
  }
  const kind = detectCompression(Buffer.concat(head));
  async function* whole(): AsyncGenerator<Buffer> {
    yield* head;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  if (kind === "none") {
    yield* whole();
    return;
  }
  if (kind !== "gzip") {
    throw new MiniboxError(
      `${kind}-compressed archives are not supported`,
      "decompress it first, or compress it with gzip",
    );
  }
  yield* pipeline(Readable.from(whole()), createGunzip(), () => {});
}

/** JSON files of an archive are small; a huge one is not a real manifest. */
export function readSmall(file: ArchiveFile): Buffer {
  if (file.size > 4 * 1024 * 1024) {
    throw new MiniboxError(`a metadata file of the archive is too large (${file.size} bytes)`);
  }
  // Synchronous: a few KiB, read once.
  return readFileSync(file.path);
}

async function drain(data: AsyncIterable<Buffer>): Promise<void> {
  for await (const _chunk of data) {
    // discarded
  }
}
