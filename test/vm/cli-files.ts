// The files that make the built minibox CLI run inside the VM: the bundles
// (dist/minibox.mjs and dist/minibox.cjs, the minibox-core.cjs and
// minibox-commands.cjs they run with their code caches, and the
// chunks, built by `npm run build`), koffi with
// only its linux_x64 binary, and the native executor with its libraries,
// laid out under CLI_DIR as in a checkout (the bundle finds the executor at
// ../native/build/minibox-exec and koffi through node_modules).
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { sharedLibraries } from "./build-initramfs.js";
import { CLI_DIR } from "./cli-check-result.js";

export function cliFiles(repoRoot: string): Record<string, string> {
  const dist = path.join(repoRoot, "dist");
  const exec = path.join(repoRoot, "native", "build", "minibox-exec");
  const koffi = path.join(repoRoot, "node_modules", "koffi");
  const needed = [path.join(dist, "minibox.mjs"), exec, path.join(koffi, "index.js")];
  const missing = needed.filter((f) => !existsSync(f));
  if (missing.length > 0) {
    throw new Error(`not built: ${missing.join(", ")} (run 'npm run build' first)`);
  }
  const files: Record<string, string> = {};
  const add = (rel: string) => {
    files[path.posix.join(CLI_DIR, rel)] = path.join(repoRoot, rel);
  };
  add("dist/minibox.mjs");
  add("dist/minibox.cjs");
  for (const bundle of ["minibox-core.cjs", "minibox-commands.cjs"]) {
    add(`dist/${bundle}`);
    if (existsSync(path.join(dist, `${bundle}.cache`))) add(`dist/${bundle}.cache`);
  }
  const chunks = path.join(dist, "chunks");
  for (const n of existsSync(chunks) ? readdirSync(chunks) : []) {
    if (n.endsWith(".mjs")) add(`dist/chunks/${n}`);
  }
  add("native/build/minibox-exec");
  for (const f of ["package.json", "index.js", "build/koffi/linux_x64/koffi.node"]) {
    add(`node_modules/koffi/${f}`);
  }
  for (const lib of sharedLibraries(exec)) files[lib] = lib;
  return files;
}
