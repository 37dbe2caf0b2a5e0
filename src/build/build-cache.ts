/**
 * The build cache: a step's key is its parent image, its text after
 * substitution, and for COPY/ADD the checksum of what it copies (content,
 * mode, owner, not mtimes). Keys map to image IDs in one JSON file under
 * <root> (rootLayout's buildCache).
 */
import { createHash, randomBytes } from "node:crypto";
import { readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ImageRecord, Store } from "../image/store.js";
import { type ContextFile, matchSources } from "./context.js";
import { rejectUrls } from "./copy.js";
import type { Instruction } from "./dockerfile.js";
import { expand } from "./shell-words.js";

/** The cache key: parent image, instruction text, and for COPY/ADD what is copied (content, mode). */
export async function cacheKey(
  image: ImageRecord | undefined,
  ins: Instruction,
  env: Record<string, string | undefined>,
  files: ContextFile[],
  contextDir: string,
  from: { image?: ImageRecord } | undefined,
): Promise<string> {
  const hash = createHash("sha256");
  hash.update(`${image?.id ?? "scratch"}\n${ins.raw}\n${JSON.stringify(env)}\n`);
  // An image's ID is the digest of its config, which names its layers: it stands for its files.
  if (from) hash.update(`from ${from.image?.id ?? "scratch"}\n`);
  else if (ins.kind === "COPY" || ins.kind === "ADD") {
    rejectUrls(
      ins,
      ins.sources.map((s) => expand(s, env)),
    );
    for (const source of ins.sources) {
      for (const f of matchSources(files, expand(source, env))) {
        hash.update(`${f.path}\0${f.mode}\0${f.type}\0`);
        if (f.type === "file") hash.update(await readFile(join(contextDir, f.path)));
        if (f.linkTarget) hash.update(f.linkTarget);
      }
    }
  }
  return hash.digest("hex");
}

export async function loadCache(store: Store): Promise<Record<string, string>> {
  try {
    return JSON.parse(await readFile(store.layout.buildCache, "utf8"));
  } catch {
    return {};
  }
}

export async function saveCache(store: Store, cache: Record<string, string>): Promise<void> {
  const file = store.layout.buildCache;
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(3).toString("hex")}`;
  await writeFile(tmp, JSON.stringify(cache));
  await rename(tmp, file);
}

/**
 * `builder prune`: forget every cached step (the images they made stay,
 * counted and pruned as images). Returns the keys and the bytes the index took.
 */
export async function pruneCache(store: Store): Promise<{ keys: string[]; bytes: number }> {
  const file = store.layout.buildCache;
  const bytes = await stat(file).then(
    (s) => s.size,
    () => 0,
  );
  const keys = Object.keys(await loadCache(store));
  await rm(file, { force: true });
  return { keys, bytes };
}
