// Starts the test environment (fixtures, token server, three registries)
// outside vitest — for benchmarks and manual poking — and prints its TestEnv
// JSON on stdout. Stops everything on SIGINT/SIGTERM.
//
//   npx vite-node scripts/test-env.ts            # run until Ctrl-C
//   npx vite-node scripts/test-env.ts -- --once  # start, print, stop (timing check)
//   npx vite-node scripts/test-env.ts -- --keep  # keep test/.work/<pid> afterwards
import { startTestEnv } from "../test/support/env.js";

const once = process.argv.includes("--once");
const keep = process.argv.includes("--keep");

const running = await startTestEnv();
process.stdout.write(`${JSON.stringify(running.env, null, 2)}\n`);
process.stderr.write(`test env ready in ${running.env.setupMs} ms (${running.env.workDir})\n`);

let stopping = false;
const shutdown = async () => {
  if (stopping) return;
  stopping = true;
  await running.stop({ keep });
  process.stderr.write("test env stopped\n");
};

if (once) {
  await shutdown();
} else {
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      shutdown().then(
        () => process.exit(0),
        (e) => {
          console.error(e);
          process.exit(1);
        },
      );
    });
  }
  // Keep the event loop alive until a signal arrives.
  setInterval(() => {}, 1 << 30);
}
