// Bundle the CLI. Why: Node spends tens of milliseconds resolving and
// loading ~40 separate ES modules at every start, and `minibox run` is
// measured against runtimes written in C. koffi stays external (it loads a
// native binary); CommonJS dependencies get a `require`.
//
// - dist/minibox-core.cjs (main.ts, commander, the command table) and
//   dist/minibox-commands.cjs (every command module): CommonJS, so that V8
//   can keep a code cache of each (`<bundle>.cache`, written below); two, so
//   that `--version` reads only the small one. Commands still load their
//   parts on demand: esbuild turns each `await import(…)` of our own modules
//   into a module initialised on first use, so `minibox ps` evaluates none
//   of the build or pull code.
// - dist/minibox.cjs: src/cli/start.ts, which runs them with their caches;
//   what `./minibox` and package.json's bin run. CommonJS too: an ES-module
//   entry costs node's ES-module loader (~8 ms, CPU profile of `--version`).
// - dist/minibox.mjs: `import "./minibox.cjs"`, for callers of the old entry.
// - dist/minibox-runc.mjs (plus dist/chunks): engines call it per container
//   verb, and it needs none of the other commands.
import { execFileSync } from "node:child_process";
import { chmodSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
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
for (const f of ["minibox.cjs.cache", "minibox-core.cjs.cache", "minibox-commands.cjs.cache"]) {
  rmSync(`dist/${f}`, { force: true });
}

await build({
  ...common,
  entryPoints: { "minibox-runc": "src/cli/runtime-main.ts" },
  format: "esm",
  splitting: true,
  entryNames: "[name]",
  chunkNames: "chunks/[name]-[hash]",
  outExtension: { ".js": ".mjs" },
  banner: {
    js: 'import { createRequire as __minibox_require } from "node:module"; const require = __minibox_require(import.meta.url);',
  },
});

// What both CommonJS bundles share: every `import()` becomes a `require()`
// (src/cli/start.ts runs them with vm.Script, where an `import()` needs a
// dynamic-import callback; with vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
// experimental on Node 20, `rename`'s import of node:fs/promises still failed
// with "A dynamic import callback was not specified"); import.meta.url is the
// URL an ES module at the bundle's path would have (the code finds native/
// and koffi with it); "use strict" comes first, where it is a directive
// (esbuild's own comes after the banner): the sources are ES modules.
const cjs = {
  ...common,
  format: "cjs",
  supported: { "dynamic-import": false },
  define: { "import.meta.url": "__minibox_url" },
  banner: {
    js: '"use strict";\nconst __minibox_url = require("node:url").pathToFileURL(__filename).href;',
  },
};

// Node built-ins that cost milliseconds to load and that most commands never
// call become `require("minibox-lazy:<name>")`, which src/cli/start.ts
// answers with an object that requires the real module on first use.
// Measured (CPU profiles of `--version` and `ps` on an empty root):
// commander requires child_process at load only to spawn executable
// subcommands (minibox has none), and child_process loads net, dgram and
// streams: ~9 ms of every command; crypto (random names, digests) ~3.5 ms
// of `ps`, which only formats. A named import (`import { spawn } from …`)
// reads the property when it is called, so it loads nothing before that.
const LAZY_BUILTINS =
  /^(node:)?(child_process|crypto|readline|readline\/promises|https?|zlib|net|tls|dgram)$/;
const lazyBuiltins = {
  name: "lazy-builtins",
  setup(b) {
    b.onResolve({ filter: LAZY_BUILTINS }, (args) => ({
      path: `minibox-lazy:${args.path.replace(/^node:/, "")}`,
      external: true,
    }));
  },
};

// The entry, dist/minibox.cjs (no code cache: it is 2 kB).
await build({
  ...cjs,
  entryPoints: { minibox: "src/cli/start.ts" },
  outExtension: { ".js": ".cjs" },
});
writeFileSync("dist/minibox.mjs", '#!/usr/bin/env node\nimport "./minibox.cjs";\n');
chmodSync("dist/minibox.mjs", 0o755);

// The core, dist/minibox-core.cjs: main.ts, commander and the command table;
// all that `--version` needs. It exports commander and errors.ts for the
// commands bundle (one MiniboxError class, one commander), and its
// `import()`s of command modules become `require("minibox-command:./x.js")`,
// which src/cli/start.ts answers from the commands bundle.
const COMMAND_MODULE = /^\.\/[a-z-]+-commands?\.js$/;
await build({
  ...cjs,
  stdin: {
    contents: [
      'export * as commander from "commander";',
      'export * as errors from "../errors.js";',
      'import "./main.js";',
    ].join("\n"),
    resolveDir: "src/cli",
    sourcefile: "src/cli/core.ts",
    loader: "ts",
  },
  outfile: "dist/minibox-core.cjs",
  outdir: undefined,
  plugins: [
    lazyBuiltins,
    {
      name: "command-modules",
      setup(b) {
        b.onResolve({ filter: COMMAND_MODULE }, (args) =>
          args.importer.endsWith("command-table.ts")
            ? { path: `minibox-command:${args.path}`, external: true }
            : undefined,
        );
      },
    },
  ],
});

// The commands, dist/minibox-commands.cjs: every command module, each
// initialised on first use (esbuild's lazy wrapper for a `require` of an ES
// module), so `ps` evaluates none of the build or pull code. It takes
// commander and errors.ts from the core (`require("minibox-core:…")`).
const commandFiles = readdirSync("src/cli").filter((f) =>
  COMMAND_MODULE.test(`./${f.replace(/\.ts$/, ".js")}`),
);
const ERRORS = resolvePath("src/errors.ts");
await build({
  ...cjs,
  stdin: {
    contents: [
      "exports.load = (name) => {",
      "  switch (name) {",
      ...commandFiles.map(
        (f) => `    case "./${f.replace(/\.ts$/, ".js")}": return require("./${f}");`,
      ),
      "  }",
      "  throw new Error('no command module ' + name);",
      "};",
    ].join("\n"),
    resolveDir: "src/cli",
    sourcefile: "src/cli/commands.js",
    loader: "js",
  },
  outfile: "dist/minibox-commands.cjs",
  outdir: undefined,
  plugins: [
    lazyBuiltins,
    {
      name: "from-core",
      setup(b) {
        b.onResolve({ filter: /^commander$/ }, () => ({
          path: "minibox-core:commander",
          external: true,
        }));
        b.onResolve({ filter: /errors\.js$/ }, (args) =>
          resolvePath(args.resolveDir, args.path.replace(/\.js$/, ".ts")) === ERRORS
            ? { path: "minibox-core:errors", external: true }
            : undefined,
        );
      },
    },
  ],
});

// Both bundles are ASCII (non-ASCII characters in comments and regular
// expressions become \u escapes), so that start.ts can read them as latin1:
// a one-byte string, where UTF-8 decoding of the 1.3 MB bundle made a
// two-byte one (~5 ms, measured).
for (const file of ["dist/minibox-core.cjs", "dist/minibox-commands.cjs"]) {
  const text = readFileSync(file, "utf8");
  if (/(?<![\w$.])import\(/.test(text)) throw new Error(`${file} still has an import() call`);
  const ascii = text.replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  if (/[\u0080-\uffff]/.test(ascii)) throw new Error(`${file} is not ASCII`);
  writeFileSync(file, ascii);
}

// The code caches (both bundles'), from a run of `--help`: it loads every
// command module, so the caches hold the top-level code and the register
// functions of all of them (the compiling that every command start would
// otherwise repeat).
execFileSync(process.execPath, ["dist/minibox.cjs", "--help"], {
  env: { ...process.env, MINIBOX_WRITE_CODE_CACHE: "1" },
  stdio: "ignore",
});
