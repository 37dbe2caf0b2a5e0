// Bundle the CLI into dist/minibox.mjs and dist/minibox-runc.mjs (plus chunks loaded on demand). Why: Node spends tens of
// milliseconds resolving and loading ~40 separate ES modules at every start,
// and `minibox run` is measured against runtimes written in C. koffi stays
// external (it loads a native binary); CommonJS dependencies get a `require`.
import { rmSync } from "node:fs";
import { build } from "esbuild";

// Chunk names carry a content hash: without this, every rebuild would leave
// the previous chunks behind in dist/chunks.
rmSync("dist/chunks", { recursive: true, force: true });

await build({
  // minibox-runc has an entry of its own: engines call it per container
  // verb, and it needs none of the other commands.
  entryPoints: { minibox: "src/cli/main.ts", "minibox-runc": "src/cli/runtime-main.ts" },
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node18",
  external: ["koffi"],
  // Commands load their heavy parts on demand (`await import(…)`): with
  // splitting, those become chunks that `minibox run` never reads for a pull
  // and vice versa.
  splitting: true,
  outdir: "dist",
  entryNames: "[name]",
  chunkNames: "chunks/[name]-[hash]",
  outExtension: { ".js": ".mjs" },
  banner: {
    js: 'import { createRequire as __minibox_require } from "node:module"; const require = __minibox_require(import.meta.url);',
  },
  logLevel: "warning",
});
