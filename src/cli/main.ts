#!/usr/bin/env node
/**
 * The minibox command line. Every command reads and writes state under one
 * root directory; there is no daemon to talk to (unlike Docker's client and
 * engine, which talk over a unix socket, TCP with TLS, or SSH).
 */
import { Command, CommanderError } from "commander";
import { MiniboxError } from "../errors.js";
import { DEFAULT_ROOT } from "../layout.js";
import { modulesFor } from "./command-table.js";
import { collect } from "./options.js";

/** The program with the global options and the commands `argv` needs (see command-table.ts). */
async function buildProgram(argv: string[]): Promise<Command> {
  const program = new Command("minibox")
    .description(
      "A container engine written from scratch: OCI images, overlayfs, namespaces, cgroups",
    )
    .version("0.1.0")
    .option("--root <dir>", `state directory (default: $MINIBOX_ROOT or ${DEFAULT_ROOT})`)
    .option(
      "--config <dir>",
      "client config directory, for credentials (default: $MINIBOX_CONFIG or ~/.minibox)",
    )
    .option("--debug", "show stack traces for errors")
    .option(
      "--insecure-registry <host[:port]>",
      "use plain HTTP for this registry (repeatable)",
      collect,
    )
    .option(
      "--registry-mirror <url>",
      "a docker.io mirror tried first (or $MINIBOX_REGISTRY_MIRROR)",
    )
    .enablePositionalOptions()
    .showSuggestionAfterError()
    .exitOverride();
  const registers = await Promise.all(modulesFor(argv.slice(2)).map((m) => m.load()));
  for (const register of registers) register(program);
  for (const command of program.commands) {
    command.exitOverride();
    for (const sub of command.commands) sub.exitOverride();
  }
  return program;
}

// `minibox logs x | head`: a reader that goes away is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(0);
    throw err;
  });
}

async function main(argv: string[]): Promise<number> {
  const debug = argv.includes("--debug");
  try {
    await (await buildProgram(argv)).parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has already printed its message (usage errors, --help, --version).
      return err.exitCode === 0 ? 0 : 1;
    }
    if (err instanceof MiniboxError) {
      process.stderr.write(`minibox: ${err.userLine()}\n`);
      if (debug) process.stderr.write(`${err.stack}\n`);
      return err.exitCode;
    }
    // Not a MiniboxError: either a system error we did not anticipate (its
    // message names the call and path, e.g. "EACCES: permission denied,
    // mkdir '/var/lib/minibox'") or a bug. Still one line unless --debug.
    const message = (err as Error).message ?? String(err);
    process.stderr.write(
      debug ? `${(err as Error).stack}\n` : `minibox: ${message} (run with --debug for details)\n`,
    );
    return 1;
  }
}

main(process.argv).then(
  (code) => {
    // A command that ran a container has set its exit status already.
    if (code !== 0 || process.exitCode === undefined) process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`minibox: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
