/** logs: Docker's flags; reading the json-file log is src/runtime/logs.ts. */
import type { Command } from "commander";
import { findContainer } from "../runtime/lifecycle.js";
import { type LogOptions, readLogs } from "../runtime/logs.js";
import { contextFrom } from "./context.js";

export function registerLogs(program: Command): void {
  program
    .command("logs")
    .description("Show a container's output (its json-file log)")
    .argument("<container>")
    .option("-f, --follow", "keep printing until the container exits")
    .option("-n, --tail <n>", "only the last N lines ('all' for every line)", "all")
    .option("-t, --timestamps", "prefix each line with its time")
    .option("--since <time>", "only lines after this time (RFC 3339, or a duration like 10m)")
    .action(async (name: string, opts: LogOptions, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const c = await findContainer(store.root, name);
      // Each entry goes back to the stream it came from, as with Docker.
      await readLogs(store.root, c, opts, (stream, text) =>
        (stream === "stderr" ? process.stderr : process.stdout).write(text),
      );
    });
}
