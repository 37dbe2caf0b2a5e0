/**
 * `minibox compose`: Docker Compose's verbs on a compose file. Parsing only;
 * the work is in src/compose (up.ts, commands.ts).
 */
import type { Command } from "commander";
import type { Project, Service } from "../compose/model.js";
import type { ComposeCtx } from "../compose/up.js";
import { contextFrom, type GlobalOptions } from "./context.js";
import { collect } from "./options.js";

interface ComposeOptions extends GlobalOptions {
  file?: string;
  projectName?: string;
}

/** The project (file read, checked) and what the verbs need; nothing is changed yet. */
async function open(
  cmd: Command,
  readOnly = false,
): Promise<{ ctx: ComposeCtx; project: Project }> {
  const opts = cmd.optsWithGlobals<ComposeOptions>();
  const base = contextFrom(cmd);
  const { loadProject } = await import("../compose/load.js");
  const { resolveProject } = await import("../compose/model.js");
  const raw = loadProject(opts.file, opts.projectName);
  const project = resolveProject(raw);
  const globals = ["--root", base.store.root];
  if (opts.config) globals.push("--config", opts.config);
  for (const r of base.endpoints.insecureRegistries ?? []) globals.push("--insecure-registry", r);
  if (base.endpoints.registryMirror)
    globals.push("--registry-mirror", base.endpoints.registryMirror);
  // `config` only reads the file: it leaves the state directory alone.
  if (!readOnly) await base.store.init();
  return {
    project,
    ctx: {
      store: base.store,
      mb: { globals },
      vars: raw.vars,
      say: (line) => process.stderr.write(` ✔ ${line}\n`),
    },
  };
}

async function pick(project: Project, names: string[]): Promise<Service[]> {
  const { selectServices } = await import("../compose/resources.js");
  return selectServices(project, names);
}

export function registerComposeCommand(program: Command): void {
  const compose = program
    .command("compose")
    .description("Define and run multi-container applications (Docker Compose files)")
    .option(
      "-f, --file <file>",
      "the compose file (default: compose.yaml, compose.yml, docker-compose.yml, docker-compose.yaml)",
    )
    .option("-p, --project-name <name>", "project name (default: the directory's name)")
    .option("--root <dir>", "state directory (as minibox --root)")
    .enablePositionalOptions();
  registerUp(compose);
  registerDown(compose);
  registerPs(compose);
  registerLogs(compose);
  registerLifecycle(compose);
  registerExecRun(compose);
  registerConfig(compose);
  for (const sub of compose.commands) sub.exitOverride();
}

function registerUp(compose: Command): void {
  compose
    .command("up")
    .description("Create and start containers (a second up leaves unchanged services running)")
    .argument("[service...]")
    .option("-d, --detach", "run in the background")
    .option("--build", "build images before starting containers")
    .action(async (names: string[], opts: { detach?: boolean; build?: boolean }, cmd: Command) => {
      const { ctx, project } = await open(cmd);
      const { up } = await import("../compose/up.js");
      const services = await pick(project, names);
      await up(ctx, project, { build: Boolean(opts.build), services });
      if (opts.detach) return;
      const { logs, stop } = await import("../compose/commands.js");
      // Foreground: follow every service's log; Ctrl-C stops them, as Compose does.
      let stopping: Promise<void> | undefined;
      const onSignal = () => {
        process.stderr.write("Gracefully stopping...\n");
        stopping ??= stop(ctx, project, services);
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      await logs(ctx, project, services, { follow: true, tail: "all", timestamps: false });
      await stopping;
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    });
}

function registerDown(compose: Command): void {
  compose
    .command("down")
    .description("Stop and remove containers and networks (-v: and volumes)")
    .option("-v, --volumes", "remove the named volumes declared in the file")
    .action(async (opts: { volumes?: boolean }, cmd: Command) => {
      const { ctx, project } = await open(cmd);
      const { down } = await import("../compose/commands.js");
      await down(ctx, project, Boolean(opts.volumes));
    });
}

function registerPs(compose: Command): void {
  compose
    .command("ps")
    .description("List the project's containers")
    .option("-a, --all", "stopped ones too")
    .option("-q, --quiet", "only IDs")
    .option("--format <template>", "a Go template, 'table TEMPLATE' or 'json'")
    .action(async (opts: { all?: boolean; quiet?: boolean; format?: string }, cmd: Command) => {
      const { ctx, project } = await open(cmd);
      const { ps } = await import("../compose/commands.js");
      await ps(ctx, project, {
        all: Boolean(opts.all),
        quiet: Boolean(opts.quiet),
        format: opts.format,
      });
    });
}

function registerLogs(compose: Command): void {
  compose
    .command("logs")
    .description("Show the services' output, each line prefixed with its container")
    .argument("[service...]")
    .option("-f, --follow", "keep printing")
    .option("-n, --tail <n>", "only the last N lines of each", "all")
    .option("-t, --timestamps", "prefix each line with its time")
    .action(
      async (
        names: string[],
        opts: { follow?: boolean; tail: string; timestamps?: boolean },
        cmd: Command,
      ) => {
        const { ctx, project } = await open(cmd);
        const { logs } = await import("../compose/commands.js");
        await logs(ctx, project, await pick(project, names), {
          follow: Boolean(opts.follow),
          tail: opts.tail,
          timestamps: Boolean(opts.timestamps),
        });
      },
    );
}

/** stop, start, restart, build, pull: each takes service names (all if none). */
function registerLifecycle(compose: Command): void {
  const verbs = {
    stop: "Stop services",
    start: "Start services' stopped containers",
    restart: "Restart services",
    build: "Build the services that have a build section",
    pull: "Pull the services' images",
  } as const;
  for (const [verb, description] of Object.entries(verbs)) {
    compose
      .command(verb)
      .description(description)
      .argument("[service...]")
      .action(async (names: string[], _opts: unknown, cmd: Command) => {
        const { ctx, project } = await open(cmd);
        const commands = await import("../compose/commands.js");
        await commands[verb as keyof typeof verbs](ctx, project, await pick(project, names));
      });
  }
}

function registerExecRun(compose: Command): void {
  compose
    .command("exec")
    .description("Run a command in a service's running container")
    .argument("<service>")
    .argument("<command...>")
    .option("-T, --no-tty", "no pseudo-terminal (the default when stdin is not one)")
    .option("-u, --user <user>", "run as this user")
    .option("-w, --workdir <dir>", "working directory")
    .option("-e, --env <K=V>", "set an environment variable (repeatable)", collect)
    .passThroughOptions()
    .action(
      async (
        name: string,
        command: string[],
        opts: { tty: boolean; user?: string; workdir?: string; env?: string[] },
        cmd: Command,
      ) => {
        const { ctx, project } = await open(cmd);
        const { exec } = await import("../compose/commands.js");
        const [service] = await pick(project, [name]);
        process.exitCode = await exec(ctx, project, service as Service, command, {
          noTty: !opts.tty,
          user: opts.user,
          workdir: opts.workdir,
          env: opts.env ?? [],
        });
      },
    );
  compose
    .command("run")
    .description("Run a one-off command in a new container of a service")
    .argument("<service>")
    .argument("[command...]")
    .option("--rm", "remove the container when it exits")
    .option("-T, --no-tty", "no pseudo-terminal")
    .passThroughOptions()
    .action(
      async (
        name: string,
        command: string[],
        opts: { rm?: boolean; tty: boolean },
        cmd: Command,
      ) => {
        const { ctx, project } = await open(cmd);
        const { runOneOff } = await import("../compose/commands.js");
        const [service] = await pick(project, [name]);
        process.exitCode = await runOneOff(ctx, project, service as Service, command, {
          rm: Boolean(opts.rm),
          noTty: !opts.tty,
        });
      },
    );
}

function registerConfig(compose: Command): void {
  compose
    .command("config")
    .description("Print the compose file as resolved (variables, defaults, paths)")
    .action(async (_opts: unknown, cmd: Command) => {
      const { project } = await open(cmd, true);
      const { config } = await import("../compose/commands.js");
      process.stdout.write(config(project));
    });
}
