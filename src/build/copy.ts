/**
 * COPY and ADD: the matched files laid out at their destination in a staging
 * directory, which then becomes the step's layer. Files come from one of two
 * places:
 *   - the build context (owner 0:0 unless --chown, as Docker does), where ADD
 *     also unpacks a local tar archive (plain or gzip) into the destination;
 *   - another image or an earlier stage (`--from`), read through the merged
 *     view of its layers (src/image/image-tree.ts), owners kept unless --chown.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, copyFile, lchown, mkdir, open, readlink, rm, symlink } from "node:fs/promises";
import { dirname, join, posix } from "node:path";
import { createGunzip } from "node:zlib";
import { MiniboxError } from "../errors.js";
import { detectCompression } from "../image/compression.js";
import { type LayerDir, listImageTree, type TreeEntry } from "../image/image-tree.js";
import { unpackLayer } from "../image/layer.js";
import { type ContextFile, resolveSources, type SourceMatch } from "./context.js";
import { expand, type Instruction } from "./dockerfile.js";

export type CopyInstruction = Extract<Instruction, { kind: "COPY" | "ADD" }>;

/** Where a COPY reads from. */
export interface CopySource {
  files: ContextFile[];
  /** The host path holding a file's bytes. */
  where(file: ContextFile): string;
  /** The owner a file keeps when there is no --chown (undefined: 0:0). */
  owner?(file: ContextFile): { uid: number; gid: number };
  /** ADD unpacks local tar archives: only for the build context. */
  fromContext: boolean;
}

export function contextSource(files: ContextFile[], contextDir: string): CopySource {
  return { files, where: (f) => join(contextDir, f.path), fromContext: true };
}

/**
 * The files of an image (or stage) under the given COPY sources: each
 * source's tree is listed from its longest glob-free prefix, so copying
 * /app/bin from a large image does not walk the whole image.
 */
export async function imageSource(layers: LayerDir[], sources: string[]): Promise<CopySource> {
  const byPath = new Map<string, TreeEntry>();
  for (const source of sources) {
    const segs = posix.normalize(`/${source}`).split("/").filter(Boolean);
    const glob = segs.findIndex((s) => /[*?[]/.test(s));
    const prefix = (glob < 0 ? segs : segs.slice(0, glob)).join("/");
    for (const e of await listImageTree(layers, prefix)) {
      if (e.path !== "" && e.type !== "other") byPath.set(e.path, e);
    }
  }
  const files = [...byPath.values()]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((e) => ({
      path: e.path,
      size: e.size,
      mode: e.mode,
      type: e.type as ContextFile["type"],
      linkTarget: e.linkTarget,
    }));
  const entry = (f: ContextFile) => byPath.get(f.path) as TreeEntry;
  return {
    files,
    where: (f) => entry(f).source,
    owner: (f) => ({ uid: entry(f).uid, gid: entry(f).gid }),
    fromContext: false,
  };
}

export interface CopyPlan {
  dest: string;
  matched: SourceMatch[];
  intoDir: boolean;
}

/** ADD of a URL is not supported (the rest of a build never needs the network); COPY never takes one. */
export function rejectUrls(ins: CopyInstruction, sources: string[]): void {
  const url = sources.find((s) => /^[a-z][a-z0-9+.-]*:\/\//i.test(s));
  if (url) {
    throw new MiniboxError(
      ins.kind === "COPY"
        ? `line ${ins.line}: COPY: source can't be a URL (${url})`
        : `line ${ins.line}: ADD of a URL (${url}) is not supported by minibox`,
      "download the file into the build context, then COPY it",
    );
  }
}

/** Which files go where: Docker's rules for sources, globs and a destination directory. */
export function planCopy(
  ins: CopyInstruction,
  source: CopySource,
  vars: Record<string, string | undefined>,
  workdir: string,
): CopyPlan {
  const sources = ins.sources.map((s) => expand(s, vars));
  rejectUrls(ins, sources);
  const matched = sources.flatMap((s) => {
    try {
      return resolveSources(source.files, s);
    } catch (err) {
      if (source.fromContext) throw err;
      throw new MiniboxError(
        `line ${ins.line}: COPY --from=${ins.from}: ${s}: no such file or directory in that image`,
      );
    }
  });
  const rawDest = expand(ins.dest, vars);
  const dest = posix.resolve(workdir, rawDest);
  // Docker: with several sources, or a destination ending in "/", files go into the directory.
  const intoDir =
    rawDest === "." ||
    rawDest.endsWith("/") ||
    rawDest.endsWith("/.") ||
    matched.length > 1 ||
    sources.length > 1 ||
    matched.some((m) => m.file.type === "dir");
  return { dest, matched, intoDir };
}

/**
 * Lay the planned files out under `staging`. `chown` (resolved from
 * --chown) overrides every owner; `chmod` (--chmod, octal) every mode.
 */
export async function stageCopy(
  ins: CopyInstruction,
  source: CopySource,
  plan: CopyPlan,
  staging: string,
  chown: { uid: number; gid: number } | undefined,
): Promise<void> {
  await mkdir(staging, { recursive: true, mode: 0o755 });
  for (const { file, rel } of plan.matched) {
    const from = source.where(file);
    if (ins.kind === "ADD" && source.fromContext && file.type === "file" && (await isTar(from))) {
      // ADD unpacks a local archive into the destination (a directory), keeping its owners.
      const into = join(staging, plan.dest);
      await mkdir(into, { recursive: true, mode: 0o755 });
      await unpackLayer(createReadStream(from), into);
      continue;
    }
    const target = join(staging, plan.intoDir ? posix.join(plan.dest, rel) : plan.dest);
    await mkdir(dirname(target), { recursive: true, mode: 0o755 });
    if (file.type === "dir") await mkdir(target, { recursive: true, mode: file.mode & 0o7777 });
    else if (file.type === "symlink") await symlink(await readlink(from), target);
    else await copyFile(from, target);
    if (file.type !== "symlink")
      await chmod(target, ins.chmod ? Number.parseInt(ins.chmod, 8) : file.mode & 0o7777);
    const owner = chown ?? source.owner?.(file) ?? { uid: 0, gid: 0 };
    await lchown(target, owner.uid, owner.gid);
  }
}

/** "file:<sum>" or "multi:<sum>"/"dir:<sum>" for the history's CREATED BY, like Docker. */
export function copyHistoryText(ins: CopyInstruction, plan: CopyPlan): string {
  const files = plan.matched.map((m) => m.file);
  const sum = createHash("sha256")
    .update(JSON.stringify(files.map((f) => [f.path, f.size, f.mode])))
    .digest("hex")
    .slice(0, 16);
  const kind = files.length === 1 ? "file" : files[0]?.type === "dir" ? "dir" : "multi";
  const from = ins.from ? `--from=${ins.from} ` : "";
  return `${ins.kind} ${from}${kind}:${sum} in ${plan.dest}`;
}

/** A tar archive, plain or gzip, by its first block ("ustar" at offset 257, as Docker checks). */
async function isTar(path: string): Promise<boolean> {
  const handle = await open(path, "r");
  let head: Buffer;
  try {
    const buf = Buffer.alloc(4096);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    head = buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  const kind = detectCompression(head);
  if (kind === "gzip") head = await gunzipHead(path, 512);
  else if (kind !== "none") return false; // xz, bzip2, zstd: copied as files
  return head.length >= 262 && head.subarray(257, 262).toString("latin1") === "ustar";
}

async function gunzipHead(path: string, want: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  const input = createReadStream(path);
  const gunzip = createGunzip();
  try {
    for await (const chunk of input.pipe(gunzip)) {
      chunks.push(chunk as Buffer);
      got += (chunk as Buffer).length;
      if (got >= want) break;
    }
  } catch {
    // not really gzip: not an archive
  } finally {
    input.destroy();
    gunzip.destroy();
  }
  return Buffer.concat(chunks);
}

export async function removeStaging(staging: string): Promise<void> {
  await rm(staging, { recursive: true, force: true });
}
