// One `minibox run` with extra timestamps, for bench/run.ts (which spawns it
// once per marked round: a fresh node process, cold JIT, like the CLI).
//
//   node bench/run-trace.mjs <dist dir> <minibox arguments…>
//   e.g. node bench/run-trace.mjs dist --root R run --rm --network none --trace REF true
//
// It runs the real CLI (dist/cli/main.js) in this process, and adds what
// `--trace` cannot see: when node's bootstrap ended (this script's first
// line), when minibox's modules were loaded (they are imported here first,
// then main.js, whose body starts the command), how long spawning the native
// executor took (child_process.spawn is wrapped: fork + exec of
// minibox-exec, until spawn returns), when the executor exited, and when the
// process started to exit. At exit it writes one line to stderr:
//   [run-trace] {"marks":[[label, ms since the process's time origin], ...]}
// The `--trace` lines go to stderr as usual, on the same clock.
const marks = [["script start", performance.now()]];
const mark = (label) => marks.push([label, performance.now()]);

const { createRequire, syncBuiltinESMExports } = await import("node:module");
const { writeSync } = await import("node:fs");
const { basename, resolve } = await import("node:path");
const { pathToFileURL } = await import("node:url");

const [distArg, ...cliArgs] = process.argv.slice(2);
if (!distArg || cliArgs.length === 0) {
  process.stderr.write("usage: node bench/run-trace.mjs <dist dir> <minibox arguments…>\n");
  process.exit(2);
}
const dist = resolve(distArg);
const url = (rel) => pathToFileURL(`${dist}/${rel}`).href;

// executor.js does `import { spawn } from "node:child_process"`: patch the
// builtin and sync its ESM facade before that module is loaded.
const require = createRequire(import.meta.url);
const childProcess = require("node:child_process");
const realSpawn = childProcess.spawn;
let spawns = 0;
childProcess.spawn = function spawn(file, ...rest) {
  const n = ++spawns;
  const what = `${basename(String(file))}#${n}`;
  mark(`spawn ${what} call`);
  const child = realSpawn.call(this, file, ...rest);
  mark(`spawn ${what} returned`);
  child.once("exit", () => mark(`spawn ${what} exit`));
  child.once("close", () => mark(`spawn ${what} close`));
  return child;
};
syncBuiltinESMExports();
mark("hooks installed");

// main.js's own imports, in its order; then main.js, whose body runs the command.
await import(createRequire(url("cli/main.js")).resolve("commander"));
await import(url("errors.js"));
await import(url("cli/auth-commands.js"));
await import(url("cli/context.js"));
await import(url("cli/image-commands.js"));
await import(url("cli/run-command.js"));
mark("modules loaded");

process.on("exit", () => {
  mark("process exit");
  writeSync(2, `[run-trace] ${JSON.stringify({ marks })}\n`);
});
process.argv = [process.argv[0], `${dist}/cli/main.js`, ...cliArgs];
await import(url("cli/main.js"));
mark("main.js evaluated");
