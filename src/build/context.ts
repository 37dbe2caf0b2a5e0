// The build context: the files under the context directory that survive
// .dockerignore, and the COPY/ADD source matching over them.

import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import path from "node:path";
import dockerignore from "@balena/dockerignore";
import { MiniboxError } from "../errors.js";
import { humanSize } from "../format-size.js";

export interface ContextFile {
  /** Relative to the context directory, posix separators, no leading "./". */
  path: string;
  /** Bytes for regular files, 0 otherwise. */
  size: number;
  /** Permission bits (incl. setuid/setgid/sticky), without the file type. */
  mode: number;
  type: "file" | "dir" | "symlink";
  linkTarget?: string;
}

/**
 * Walk contextDir, filtered by its .dockerignore with Docker's semantics
 * (patterns, ! exceptions, **; a pattern matching a directory excludes what is
 * under it). The Dockerfile and .dockerignore themselves are always sent, like
 * Docker. Sorted by path. totalBytes is the sum of the regular files' sizes.
 * dockerfilePath: absolute, or relative to contextDir or to the cwd.
 */
export async function readContext(
  contextDir: string,
  dockerfilePath: string,
): Promise<{ files: ContextFile[]; totalBytes: number }> {
  const root = path.resolve(contextDir);
  let patterns: string[] = [];
  try {
    patterns = parseDockerignore(await readFile(path.join(root, ".dockerignore"), "utf8"));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  const always = new Set([".dockerignore"]);
  // dockerfilePath may be absolute, relative to the context or to the cwd (-f).
  for (const abs of [path.resolve(root, dockerfilePath), path.resolve(dockerfilePath)]) {
    const df = path.relative(root, abs);
    if (df && !df.startsWith("..") && !path.isAbsolute(df))
      always.add(df.split(path.sep).join("/"));
  }

  // A CommonJS module whose typings declare `export default`: the function is `.default`.
  const ig = dockerignore.default().add(patterns);
  const hasExceptions = patterns.some((p) => p.startsWith("!"));
  const excluded = (rel: string) => !always.has(rel) && ig.ignores(rel);
  // Could anything under an excluded directory be brought back?
  const mayReinclude = (rel: string) =>
    hasExceptions || [...always].some((a) => a.startsWith(`${rel}/`));

  const files: ContextFile[] = [];
  const walk = async (dirRel: string): Promise<boolean> => {
    let found = false;
    const entries = await readdir(path.join(root, dirRel), { withFileTypes: true });
    for (const entry of entries) {
      const rel = dirRel ? `${dirRel}/${entry.name}` : entry.name;
      const abs = path.join(root, rel);
      const st = await lstat(abs);
      const mode = st.mode & 0o7777;
      const skip = excluded(rel);
      if (st.isDirectory()) {
        if (skip && !mayReinclude(rel)) continue;
        const at = files.length;
        const inner = await walk(rel);
        if (!skip || inner) {
          files.splice(at, 0, { path: rel, size: 0, mode, type: "dir" });
          found = true;
        }
      } else if (skip) {
      } else if (st.isFile()) {
        files.push({ path: rel, size: st.size, mode, type: "file" });
        found = true;
      } else if (st.isSymbolicLink()) {
        files.push({ path: rel, size: 0, mode, type: "symlink", linkTarget: await readlink(abs) });
        found = true;
      }
      // sockets, FIFOs and devices are not sent (Docker's tar skips sockets too)
    }
    return found;
  };
  await walk("");
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const totalBytes = files.reduce((n, f) => n + f.size, 0);
  return { files, totalBytes };
}

/** Docker's ReadAll for .dockerignore: comments, blank lines, trimmed, cleaned patterns. */
export function parseDockerignore(text: string): string[] {
  const out: string[] = [];
  for (let line of text.replace(/^\uFEFF/, "").split(/\r?\n/)) {
    if (line.startsWith("#")) continue;
    line = line.trim();
    if (line === "") continue;
    let neg = false;
    if (line.startsWith("!")) {
      neg = true;
      line = line.slice(1).trim();
    }
    if (line.length > 1) {
      line = path.posix.normalize(line);
      if (line.startsWith("/")) line = line.slice(1) || "/";
      if (line.length > 1 && line.endsWith("/")) line = line.slice(0, -1);
    }
    if (line === "") continue;
    out.push(neg ? `!${line}` : line);
  }
  return out;
}

/** One file a COPY/ADD source brought in. */
export interface SourceMatch {
  file: ContextFile;
  /**
   * Where it lands relative to the destination: the base name for a file or
   * symlink matched directly, the path inside the directory for a directory's
   * contents, and "" for a matched directory itself.
   */
  rel: string;
}

/**
 * Files matching a COPY/ADD source (globs with *, ?, [..] like Go's
 * filepath.Match per path segment; a directory source means its contents;
 * sources must stay inside the context). Throws MiniboxError when nothing
 * matches.
 */
export function resolveSources(files: ContextFile[], source: string): SourceMatch[] {
  const clean = cleanSource(source);
  if (clean === ".") {
    return [
      { file: { path: ".", size: 0, mode: 0o755, type: "dir" }, rel: "" },
      ...files.map((f) => ({ file: f, rel: f.path })),
    ];
  }
  let roots: ContextFile[];
  if (/[*?[]/.test(clean)) {
    const segs = clean.split("/").map(segmentRegExp);
    roots = files.filter((f) => {
      const parts = f.path.split("/");
      return parts.length === segs.length && parts.every((p, i) => segs[i].test(p));
    });
  } else {
    roots = files.filter((f) => f.path === clean);
  }
  if (roots.length === 0) {
    throw new MiniboxError(
      `COPY failed: file not found in build context or excluded by .dockerignore: stat ${source}: file does not exist`,
    );
  }
  const out: SourceMatch[] = [];
  for (const r of roots) {
    if (r.type !== "dir") {
      out.push({ file: r, rel: path.posix.basename(r.path) });
      continue;
    }
    out.push({ file: r, rel: "" });
    const prefix = `${r.path}/`;
    for (const f of files) {
      if (f.path.startsWith(prefix)) out.push({ file: f, rel: f.path.slice(prefix.length) });
    }
  }
  return out;
}

/**
 * Files matching a COPY/ADD source; a matched directory contributes its
 * contents (not itself). See resolveSources for where each lands.
 */
export function matchSources(files: ContextFile[], source: string): ContextFile[] {
  return resolveSources(files, source)
    .filter((m) => m.rel !== "")
    .map((m) => m.file);
}

function cleanSource(source: string): string {
  const clean = path.posix.normalize(`/${source.replace(/\\/g, "/")}`);
  // Normalising under a virtual root hides "..": compare with the relative form.
  const rel = path.posix.normalize(source === "" ? "." : source.replace(/^\/+/, ""));
  if (rel === ".." || rel.startsWith("../")) {
    throw new MiniboxError(`COPY failed: forbidden path outside the build context: ${source}`);
  }
  const out = clean.replace(/^\/+/, "").replace(/\/+$/, "");
  return out === "" ? "." : out;
}

/** Go's filepath.Match for one path segment: *, ?, [class] with ^ negation and ranges, \ escapes. */
function segmentRegExp(seg: string): RegExp {
  let re = "";
  for (let i = 0; i < seg.length; i++) {
    const ch = seg[i];
    if (ch === "*") re += "[^/]*";
    else if (ch === "?") re += "[^/]";
    else if (ch === "\\" && i + 1 < seg.length) re += escapeRe(seg[++i]);
    else if (ch === "[") {
      const end = seg.indexOf("]", i + 2);
      if (end < 0) throw new MiniboxError(`COPY failed: syntax error in pattern: ${seg}`);
      let body = seg.slice(i + 1, end);
      let neg = false;
      if (body.startsWith("^")) {
        neg = true;
        body = body.slice(1);
      }
      const cls = body.replace(/\\(.)/g, "$1").replace(/[\\\]^]/g, "\\$&");
      re += neg ? `[^/${cls}]` : `[${cls}]`;
      i = end;
    } else re += escapeRe(ch);
  }
  return new RegExp(`^${re}$`);
}

function escapeRe(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&");
}

/**
 * Bytes Docker reports in "Sending build context to minibox": the size
 * of the uncompressed tar of the context (512-byte headers, data padded to 512,
 * a PAX header for long names, 1024 bytes of end marker).
 */
export function contextTarSize(files: ContextFile[]): number {
  let n = 1024;
  for (const f of files) {
    const name = f.type === "dir" ? `${f.path}/` : f.path;
    n += 512;
    if (Buffer.byteLength(name) > 100 || (f.linkTarget && Buffer.byteLength(f.linkTarget) > 100)) {
      n += 1024; // PAX header + its one data block (short records)
    }
    if (f.type === "file") n += Math.ceil(f.size / 512) * 512;
  }
  return n;
}

/** Docker's "Sending build context to minibox  3.072kB" (units.HumanSize: %.4g, decimal). */
export function sendingContextMessage(files: ContextFile[]): string {
  return `Sending build context to minibox  ${humanSize(contextTarSize(files))}`;
}
