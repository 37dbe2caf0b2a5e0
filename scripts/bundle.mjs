// Bundle the CLI. Why: Node spends tens of milliseconds resolving and
// loading ~40 separate ES modules at every start, and `minibox run` is
// measured against runtimes written in C. koffi stays external (it loads a
// native binary); CommonJS dependencies get a `require`.
//
// - dist/minibox.cjs: the whole CLI, one CommonJS file, so that V8 can keep a
//   code cache of it (dist/minibox.cjs.cache, written below). Commands still
//   load their parts on demand: esbuild turns each `await import(…)` of our
//   own modules into a module initialised on first use, so `minibox ps`
//   evaluates none of the build or pull code.
// - dist/minibox.mjs: src/cli/start.ts, which runs minibox.cjs with the cache.
// - dist/minibox-runc.mjs (plus dist/chunks): engines call it per container
//   verb, and it needs none of the other commands.
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { build } from "esbuild";

const common = {
  bundle: true,
  platform: "node",
  target: "node18",
  external: ["koffi"],
  outdir: "dist",
  logLevel: "warning",
};

// Chunk names carry a content hash: without this, every rebuild would leave
// the previous chunks behind in dist/chunks.
rmSync("dist/chunks", { recursive: true, force: true });
rmSync("dist/minibox.cjs.cache", { force: true });

await build({
  ...common,
  entryPoints: { "minibox-runc": "src/cli/runtime-main.ts", minibox: "src/cli/start.ts" },
  format: "esm",
  splitting: true,
  entryNames: "[name]",
  chunkNames: "chunks/[name]-[hash]",
  outExtension: { ".js": ".mjs" },
  banner: {
    js: 'import { createRequire as __minibox_require } from "node:module"; const require = __minibox_require(import.meta.url);',
  },
});

await build({
  ...common,
  entryPoints: { minibox: "src/cli/main.ts" },
  format: "cjs",
  outExtension: { ".js": ".cjs" },
  // Every `import()` becomes a `require()`: src/cli/start.ts runs this file
  // with vm.Script, where an `import()` needs a dynamic-import callback.
  // With vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER (experimental on Node
  // 20: it prints a warning) `rename`'s import of node:fs/promises still
  // failed with "A dynamic import callback was not specified".
  supported: { "dynamic-import": false },
  // The code reads import.meta.url to find native/ and koffi: the same URL
  // as an ES module at this path would have.
  define: { "import.meta.url": "__minibox_url" },
  // "use strict" first, where it is a directive (esbuild's own comes after
  // the banner): the sources are ES modules, written for strict mode.
  banner: {
    js: '"use strict";\nconst __minibox_url = require("node:url").pathToFileURL(__filename).href;',
  },
});

const cli = readFileSync("dist/minibox.cjs", "utf8");
if (/(?<![\w$.])import\(/.test(cli)) throw new Error("dist/minibox.cjs still has an import() call");

// The code cache, from a run of `--help`: it loads every command module, so
// the cache holds the top-level code and the register functions of all of
// them (the compiling that every command start would otherwise repeat).
execFileSync(process.execPath, ["dist/minibox.mjs", "--help"], {
  env: { ...process.env, MINIBOX_WRITE_CODE_CACHE: "1" },
  stdio: "ignore",
});
