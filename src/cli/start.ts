/**
 * dist/minibox.mjs: starts the CLI bundle (dist/minibox.cjs) with V8's code
 * cache (dist/minibox.cjs.cache, written by `npm run build`).
 *
 * Why: without it, every command first compiles the bundle's JavaScript
 * (ESM modules cannot use a code cache on Node 20: no compile cache before
 * Node 22). With the cache, V8 deserialises the bytecode instead, and
 * `minibox ps` spends ~25 ms less CPU before it does anything.
 *
 * The cache is only a hint: V8 checks it against the source and its own
 * version and flags, and compiles as usual when it does not match (a
 * rebuilt bundle without a new cache, another node). It is written only by
 * the build (MINIBOX_WRITE_CODE_CACHE=1), never by a command a user runs.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import vm from "node:vm";

const bundle = fileURLToPath(new URL("./minibox.cjs", import.meta.url));
const cacheFile = `${bundle}.cache`;

// The bundle as CommonJS would see it; the shebang is not JavaScript.
const source = readFileSync(bundle, "utf8").replace(/^#!.*/, "");
const script = new vm.Script(
  `(function (exports, require, module, __filename, __dirname) {${source}\n})`,
  {
    filename: bundle,
    cachedData: existsSync(cacheFile) ? readFileSync(cacheFile) : undefined,
    // No importModuleDynamically: the bundle has no `import()` left (see
    // scripts/bundle.mjs, which checks it).
  },
);

if (process.env.MINIBOX_WRITE_CODE_CACHE === "1") {
  // After the command ran: the cache then holds the functions it compiled too.
  process.once("exit", () => writeFileSync(cacheFile, script.createCachedData()));
}

const module = { exports: {} };
script.runInThisContext()(
  module.exports,
  createRequire(bundle),
  module,
  bundle,
  fileURLToPath(new URL(".", import.meta.url)),
);
