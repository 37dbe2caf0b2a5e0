/**
 * `minibox-runc` (and `minibox runtime …`, the same code): an OCI runtime
 * with runc's command line, for engines that drive runc (containerd through
 * go-runc, podman through conmon). Global flags are runc's; errors are
 * reported as runc reports them (the --log file in its format, plus stderr)
 * with exit status 1, because those callers read them there.
 */
import { Command, CommanderError } from "commander";
import { MiniboxError } from "../errors.js";
import { parseLogFormat, RuntimeLog } from "../runtime/oci/runtime-log.js";
import { versionText } from "../runtime/oci/version.js";
import { registerContainerVerbs } from "./runtime-container-verbs.js";
import { registerControlVerbs } from "./runtime-control-verbs.js";
import { featuresVerb, type GlobalOptions, specVerb } from "./runtime-verbs.js";

export const DEFAULT_RUNTIME_ROOT = "/run/minibox-runc";

function checkGlobals(globals: GlobalOptions): void {
  parseLogFormat(globals.logFormat);
  if (globals.systemdCgroup) {
    throw new MiniboxError(
      "--systemd-cgroup is not supported: minibox drives cgroupfs itself (no systemd cgroup driver); " +
        "drop the flag (containerd: SystemdCgroup = false)",
    );
  }
  if (!["true", "false", "auto"].includes(globals.rootless)) {
    throw new MiniboxError(
      `invalid --rootless value ${JSON.stringify(globals.rootless)} (true, false or auto)`,
    );
  }
}

function buildRuntimeProgram(): Command {
  const program = new Command("minibox-runc")
    .description("an OCI runtime with runc's command line (minibox's executor underneath)")
    .version(versionText(), "-v, --version", "print the version")
    .option("--root <dir>", "root directory for storage of container state", DEFAULT_RUNTIME_ROOT)
    .option("--log <file>", "write the runtime's log to this file instead of stderr")
    .option("--log-format <format>", "the log's format: text or json", "text")
    .option("--debug", "enable debug logging")
    .option(
      "--systemd-cgroup",
      "use systemd's cgroup driver (not supported: minibox drives cgroupfs)",
    )
    .option("--rootless <value>", "rootless container handling: true, false or auto", "auto")
    // Global flags come before the verb (as in runc): spec has its own --rootless.
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ outputError: () => {} });
  const globals = () => program.opts<GlobalOptions>();
  program.hook("preAction", (_program, action) => {
    checkGlobals(globals());
    new RuntimeLog(logTarget(globals())).debug(`minibox-runc ${action.name()}`);
  });
  registerVerbs(program, globals);
  return program;
}

function registerVerbs(program: Command, globals: () => GlobalOptions): void {
  program
    .command("spec")
    .description("create a new specification file (config.json) in the bundle")
    .option("-b, --bundle <dir>", "the bundle directory to write config.json into")
    .option("--rootless", "a spec for a rootless container")
    .action((opts) => specVerb(opts));
  program.command("features").description("show the enabled features").action(featuresVerb);
  registerContainerVerbs(program, globals);
  registerControlVerbs(program, globals);
  for (const command of program.commands)
    command.exitOverride().configureOutput({ outputError: () => {} });
}

function logTarget(globals: Partial<GlobalOptions>) {
  const format = globals.logFormat === "json" ? "json" : "text";
  return { file: globals.log, format, debug: globals.debug === true } as const;
}

/** Run the runtime's command line on ARGS (without the program name); returns the exit status. */
export async function runRuntimeCli(args: string[]): Promise<number> {
  const program = buildRuntimeProgram();
  // Without a verb runc prints its help on stdout and succeeds.
  if (args.length === 0) {
    process.stdout.write(program.helpInformation());
    return 0;
  }
  try {
    await program.parseAsync(args, { from: "user" });
    // run and exec pass the container's exit status on through process.exitCode.
    const code = Number(process.exitCode ?? 0);
    process.exitCode = undefined;
    return code;
  } catch (err) {
    if (err instanceof CommanderError && err.exitCode === 0) return 0; // --help, --version
    const message =
      err instanceof CommanderError
        ? err.message.replace(/^error: /, "")
        : err instanceof MiniboxError
          ? err.userLine()
          : ((err as Error).message ?? String(err));
    new RuntimeLog(logTarget(program.opts())).error(message);
    if (program.opts().debug && !(err instanceof MiniboxError || err instanceof CommanderError)) {
      process.stderr.write(`${(err as Error).stack}\n`);
    }
    return 1;
  }
}

/** `minibox runtime …`: the same command line inside minibox's. */
export function registerRuntimeCommand(program: Command): void {
  program
    .command("runtime")
    .description("an OCI runtime with runc's command line (as ./minibox-runc)")
    .helpOption(false)
    .allowUnknownOption()
    .passThroughOptions()
    .argument("[args...]")
    .action(async (args: string[]) => {
      process.exitCode = await runRuntimeCli(args);
    });
}
