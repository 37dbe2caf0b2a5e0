/**
 * Which module registers which top-level command, so that a command loads
 * only its own module. Why: importing every command file (and through them
 * the runtime, image, build, network and compose code) made `minibox
 * --version` spend ~45 ms more CPU than it does now: `--version` loads no
 * command module, `ps` only container-commands.ts and what it imports.
 *
 * test/unit/command-table.test.ts checks that each entry's names are exactly
 * the commands its module registers: a command added to a module without
 * its name here fails that test (at run time it would still work, only
 * through the "load every module" path, since an unknown word loads all).
 */
import type { Command } from "commander";

type Register = (program: Command) => void;

export interface CommandModule {
  /** The top-level commands (and groups) the module's register function adds. */
  names: readonly string[];
  load(): Promise<Register>;
}

/** In `minibox --help`'s order: the order the modules register in. */
export const COMMAND_MODULES: readonly CommandModule[] = [
  {
    names: ["pull", "image", "images", "inspect", "history", "rmi", "tag", "import"],
    load: () => import("./image-commands.js").then((m) => m.registerImageCommands),
  },
  {
    names: ["login", "logout"],
    load: () => import("./auth-commands.js").then((m) => m.registerAuthCommands),
  },
  { names: ["run"], load: () => import("./run-command.js").then((m) => m.registerRunCommand) },
  {
    names: ["ps", "logs", "stop", "kill", "rm", "wait", "container", "container-exited"].concat([
      "start",
      "restart",
      "rename",
      "port",
    ]),
    load: () => import("./container-commands.js").then((m) => m.registerContainerCommands),
  },
  {
    names: ["exec", "stats", "top"],
    load: () => import("./exec-commands.js").then((m) => m.registerExecCommands),
  },
  {
    names: ["build"],
    load: () => import("./build-command.js").then((m) => m.registerBuildCommand),
  },
  { names: ["push"], load: () => import("./push-command.js").then((m) => m.registerPushCommand) },
  {
    names: ["save", "load", "export"],
    load: () => import("./archive-commands.js").then((m) => m.registerArchiveCommands),
  },
  { names: ["cp"], load: () => import("./cp-command.js").then((m) => m.registerCpCommand) },
  {
    names: ["volume"],
    load: () => import("./volume-commands.js").then((m) => m.registerVolumeCommands),
  },
  {
    names: ["network"],
    load: () => import("./network-commands.js").then((m) => m.registerNetworkCommands),
  },
  {
    // `container diff|commit` join the `container` group.
    names: ["container", "diff", "commit"],
    load: () => import("./commit-commands.js").then((m) => m.registerCommitCommands),
  },
  {
    names: ["runtime"],
    load: () => import("./runtime-command.js").then((m) => m.registerRuntimeCommand),
  },
  {
    names: ["system", "builder"],
    load: () => import("./system-commands.js").then((m) => m.registerSystemCommands),
  },
  {
    // `system events` joins the `system` group.
    names: ["events", "system"],
    load: () => import("./events-command.js").then((m) => m.registerEventsCommand),
  },
  {
    names: ["compose"],
    load: () => import("./compose-command.js").then((m) => m.registerComposeCommand),
  },
];

/** The global options that take a value (a separate word unless written `--opt=value`). */
const GLOBAL_WITH_VALUE = new Set([
  "--root",
  "--config",
  "--insecure-registry",
  "--registry-mirror",
]);

/**
 * The modules `argv` (user arguments, without node and the script) needs:
 * the command word's own, in registration order; none for a bare
 * `--version`; every one for anything else (no command, `--help`, `help`,
 * a mistyped command, which commander then answers with its suggestion).
 */
export function modulesFor(args: readonly string[]): readonly CommandModule[] {
  const word = commandWord(args);
  if (word === undefined) {
    return args.includes("--version") || args.includes("-V") ? [] : COMMAND_MODULES;
  }
  const own = COMMAND_MODULES.filter((m) => m.names.includes(word));
  return own.length > 0 ? own : COMMAND_MODULES;
}

/** The first word that is not a global option or its value; undefined if there is none (or `--`). */
function commandWord(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") return undefined;
    if (!arg.startsWith("-")) return arg;
    if (GLOBAL_WITH_VALUE.has(arg)) i++;
  }
  return undefined;
}
