// One `minibox run` with extra timestamps, for bench/run.ts (which spawns it
// once per marked round: a fresh node process, cold JIT, like the CLI).
//
//   node bench/run-trace.mjs <CLI script> <minibox arguments…>
//   e.g. node bench/run-trace.mjs dist/minibox.mjs --root R run --rm --network none --trace REF true
//   (dist/minibox.mjs is the bundle that ./minibox runs; dist/cli/main.js is tsc's output)
//
// It imports the real CLI script in this process and adds what `--trace`
// cannot see:
// - "script start": node's bootstrap is over (this script's first line);
// - "modules loaded": the CLI's first read of process.argv. Both CLI builds
//   read it exactly once, in their last statement `main(process.argv)`,
//   after every statically imported module has been loaded and evaluated
//   (for dist/minibox.mjs: the bundle compiled from its code cache; the
//   command's own module is loaded after this mark, see
//   src/cli/command-table.ts);
// - "spawn <file>#<n> call/returned/exit/close": child_process.spawn is
//   wrapped, so the executor's spawn (fork of node + exec of minibox-exec,
//   until spawn() returns), its exit and its pipes' close are timed;
// - "process exit": the process's 'exit' event.
// At exit it writes one line to stderr:
//   [run-trace] {"marks":[[label, ms since the process's time origin], ...]}
// The `--trace` lines go to stderr as usual, on the same clock.
const marks = [["script start", performance.now()]];
const mark = (label) => marks.push([label, performance.now()]);

const { createRequire, syncBuiltinESMExports } = await import("node:module");
const { writeSync } = await import("node:fs");
const { basename, resolve } = await import("node:path");
const { pathToFileURL } = await import("node:url");

const [scriptArg, ...cliArgs] = process.argv.slice(2);
if (!scriptArg || cliArgs.length === 0) {
  process.stderr.write("usage: node bench/run-trace.mjs <CLI script> <minibox arguments…>\n");
  process.exit(2);
}
const script = resolve(scriptArg);

// The executor is started with `import { spawn } from "node:child_process"`:
// patch the builtin and sync its ESM facade before the CLI is loaded.
const require = createRequire(import.meta.url);
const childProcess = require("node:child_process");
const realSpawn = childProcess.spawn;
let spawns = 0;
childProcess.spawn = function spawn(file, ...rest) {
  const what = `${basename(String(file))}#${++spawns}`;
  mark(`spawn ${what} call`);
  const child = realSpawn.call(this, file, ...rest);
  mark(`spawn ${what} returned`);
  child.once("exit", () => mark(`spawn ${what} exit`));
  child.once("close", () => mark(`spawn ${what} close`));
  return child;
};
syncBuiltinESMExports();

const argv = [process.argv[0], script, ...cliArgs];
let argvRead = false;
Object.defineProperty(process, "argv", {
  configurable: true,
  enumerable: true,
  get() {
    if (!argvRead) {
      argvRead = true;
      mark("modules loaded");
    }
    return argv;
  },
});

process.on("exit", () => {
  mark("process exit");
  writeSync(2, `[run-trace] ${JSON.stringify({ marks })}\n`);
});
mark("import start");
await import(pathToFileURL(script).href);
