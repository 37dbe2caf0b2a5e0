#!/usr/bin/env node
/**
 * dist/minibox.cjs: starts the CLI from its two CommonJS bundles, each with
 * V8's code cache (`<bundle>.cache`, written by `npm run build`):
 *
 * - dist/minibox-core.cjs, the core (main.ts, commander, the command table): all
 *   that `--version` reads;
 * - dist/minibox-commands.cjs, every command module, read only when the
 *   command word needs one (the core's `require("minibox-command:./x.js")`).
 *   It takes commander and errors.ts from the core (`minibox-core:…`), so
 *   there is one MiniboxError class and one commander.
 *
 * Why the cache: without it, every command first compiles the bundle's
 * JavaScript (ESM modules cannot use a code cache on Node 20: no compile
 * cache before Node 22). With it, V8 deserialises the bytecode instead, and
 * `minibox ps` spends ~25 ms less CPU before it does anything. Why two
 * bundles: V8 deserialises a whole cache at once, so with one bundle
 * `--version` read 1.4 MB of JavaScript and 550 kB of cache for nothing.
 *
 * The cache is only a hint: V8 checks it against the source and its own
 * version and flags, and compiles as usual when it does not match (a
 * rebuilt bundle without a new cache, another node). It is written only by
 * the build (MINIBOX_WRITE_CODE_CACHE=1), never by a command a user runs.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import vm from "node:vm";

const dist = fileURLToPath(new URL(".", import.meta.url));
const writeCache = process.env.MINIBOX_WRITE_CODE_CACHE === "1";
// Both bundles live in dist/ and resolve the same modules (koffi, commander's
// package): one require for them.
const nodeRequire = createRequire(`${dist}minibox-core.cjs`);

/** Runs a CommonJS bundle of dist/ with its code cache; `own` answers the ids it knows first. */
function runBundle(name: string, own: (id: string) => unknown): unknown {
  const file = `${dist}${name}`;
  // latin1: the build makes the bundles ASCII; a one-byte string is read
  // without UTF-8 decoding. The shebang is not JavaScript.
  const source = readFileSync(file, "latin1").replace(/^#!.*/, "");
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(`${file}.cache`);
  } catch {
    // No cache (a build that did not write one): V8 compiles.
  }
  const script = new vm.Script(
    `(function (exports, require, module, __filename, __dirname) {${source}\n})`,
    // No importModuleDynamically: the bundles have no `import()` left (see
    // scripts/bundle.mjs, which checks it).
    { filename: file, cachedData },
  );
  if (writeCache) {
    // After the command ran: the cache then holds the functions it compiled too.
    process.once("exit", () => writeFileSync(`${file}.cache`, script.createCachedData()));
  }
  const require = (id: string) => shared(id) ?? own(id) ?? nodeRequire(id);
  const module = { exports: {} as Record<string, unknown> };
  script.runInThisContext()(module.exports, require, module, file, dist);
  return module.exports;
}

/**
 * A node built-in that loads on first use (the bundles' `minibox-lazy:…`,
 * scripts/bundle.mjs says which and why). A named import only reads the
 * property when it is called; a default or namespace import enumerates the
 * keys, which loads the module then, as an import would have.
 */
function lazyBuiltin(name: string): object {
  let real: Record<string | symbol, unknown> | undefined;
  const load = () => {
    real ??= nodeRequire(`node:${name}`) as Record<string | symbol, unknown>;
    return real;
  };
  return new Proxy(
    {},
    {
      get: (_, key) => load()[key],
      has: (_, key) => key in load(),
      ownKeys: () => Reflect.ownKeys(load()),
      getOwnPropertyDescriptor: (_, key) => {
        const d = Reflect.getOwnPropertyDescriptor(load(), key);
        // A proxy may not report a non-configurable property its target lacks.
        return d && { ...d, configurable: true };
      },
    },
  );
}

const lazy = new Map<string, object>();
/** What both bundles' `require` answers before node's. */
function shared(id: string): unknown {
  if (!id.startsWith("minibox-lazy:")) return undefined;
  const name = id.slice("minibox-lazy:".length);
  let m = lazy.get(name);
  if (!m) {
    m = lazyBuiltin(name);
    lazy.set(name, m);
  }
  return m;
}

let commands: { load: (name: string) => unknown } | undefined;

const core = runBundle("minibox-core.cjs", (id) => {
  if (!id.startsWith("minibox-command:")) return undefined;
  commands ??= runBundle("minibox-commands.cjs", (coreId) =>
    coreId.startsWith("minibox-core:") ? core[coreId.slice("minibox-core:".length)] : undefined,
  ) as typeof commands;
  return commands?.load(id.slice("minibox-command:".length));
}) as Record<string, unknown>;
