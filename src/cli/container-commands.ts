/** The container commands, Docker's flags and output shapes; each command's work is in src/runtime/. */
import type { Command } from "commander";
import { MiniboxError } from "../errors.js";
import { recordContainerEvent } from "../events/container-events.js";
import {
  findContainer,
  killContainer,
  markStopped,
  onContainerExited,
  parseSignal,
  removeContainer,
  renameContainer,
  stopContainer,
  waitExited,
} from "../runtime/lifecycle.js";
import { pruneContainers } from "../runtime/prune.js";
import { registerContainerInspect } from "./container-inspect.js";
import { contextFrom } from "./context.js";
import { humanSize } from "./format.js";
import { registerLogs } from "./logs-command.js";
import { registerPort } from "./port-command.js";
import { registerPs } from "./ps-command.js";

/** In the order `minibox --help` lists them. */
export function registerContainerCommands(program: Command): void {
  registerPs(program);
  registerLogs(program);
  registerStop(program);
  registerKill(program);
  registerRm(program);
  registerWait(program);
  const container =
    program.commands.find((c) => c.name() === "container") ?? program.command("container");
  container.description("Manage containers");
  registerContainerInspect(container);
  registerContainerExited(program);
  registerStartRestart(program);
  registerRename(program);
  registerPort(program);
  registerPort(container);
  registerContainerPrune(container);
}

function registerStop(program: Command): void {
  program
    .command("stop")
    .description("Stop containers: SIGTERM, then SIGKILL after the timeout")
    .argument("<container...>")
    .option("-t, --time <seconds>", "seconds to wait before killing", "10")
    .action(async (names: string[], opts: { time: string }, cmd: Command) => {
      const { store } = contextFrom(cmd);
      for (const name of names) {
        const c = await findContainer(store.root, name);
        await stopContainer(store.root, c, Number(opts.time));
        console.log(name);
      }
    });
}

function registerKill(program: Command): void {
  program
    .command("kill")
    .description("Send a signal to containers (default SIGKILL)")
    .argument("<container...>")
    .option("-s, --signal <signal>", "signal name or number", "KILL")
    .action(async (names: string[], opts: { signal: string }, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const signal = parseSignal(opts.signal);
      for (const name of names) {
        const c = await findContainer(store.root, name);
        // A container killed on purpose stays down, whatever its restart policy.
        if (signal === "SIGKILL" || signal === "SIGTERM" || signal === 9 || signal === 15) {
          await markStopped(store.root, c.id);
        }
        await killContainer(store.root, c, signal);
        console.log(name);
      }
    });
}

function registerRm(program: Command): void {
  program
    .command("rm")
    .description("Remove containers")
    .argument("<container...>")
    .option("-f, --force", "kill a running container first")
    .option("-v, --volumes", "also remove the container's anonymous volumes")
    .action(async (names: string[], opts: { force?: boolean; volumes?: boolean }, cmd: Command) => {
      const { store } = contextFrom(cmd);
      for (const name of names) {
        await removeContainer(
          store.root,
          await findContainer(store.root, name),
          Boolean(opts.force),
          Boolean(opts.volumes),
        );
        console.log(name);
      }
    });
}

function registerWait(program: Command): void {
  program
    .command("wait")
    .description("Wait for containers to exit; print their exit codes")
    .argument("<container...>")
    .option(
      "--condition <condition>",
      "not-running (default), or healthy: until the health check passes (fails if it turns unhealthy or the container stops)",
    )
    .action(async (names: string[], opts: { condition?: string }, cmd: Command) => {
      const { store } = contextFrom(cmd);
      if (opts.condition === "healthy") {
        const { waitHealthy } = await import("../runtime/health/wait.js");
        for (const name of names) await waitHealthy(store.root, name);
        return;
      }
      if (opts.condition !== undefined && opts.condition !== "not-running") {
        throw new MiniboxError(
          `invalid condition ${JSON.stringify(opts.condition)}`,
          "use --condition not-running or --condition healthy",
        );
      }
      for (const name of names) {
        const c = await findContainer(store.root, name);
        await waitExited(store.root, c.id);
        const after = await findContainer(store.root, c.id).catch(() => undefined);
        console.log(after?.exitCode ?? c.exitCode ?? 0);
      }
    });
}

/** The monitor runs this when a detached container exits (see native/monitor.c). */
function registerContainerExited(program: Command): void {
  program
    .command("container-exited", { hidden: true })
    .argument("<id>")
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      // This process *is* the monitor (it exec'd us): its PID names the run.
      await onContainerExited(contextFrom(cmd).store, id, process.pid);
    });
}

function registerStartRestart(program: Command): void {
  program
    .command("start")
    .description("Start stopped containers again (same filesystem, new process)")
    .argument("<container...>")
    .action(async (names: string[], _opts: unknown, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const { startContainer } = await import("../runtime/container.js");
      for (const name of names) {
        const c = await findContainer(store.root, name);
        if (!c.running) await startContainer(store, c.id);
        console.log(name);
      }
    });

  program
    .command("restart")
    .description("Stop, then start containers")
    .argument("<container...>")
    .option("-t, --time <seconds>", "seconds to wait before killing", "10")
    .action(async (names: string[], opts: { time: string }, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const { startContainer } = await import("../runtime/container.js");
      for (const name of names) {
        const c = await findContainer(store.root, name);
        await stopContainer(store.root, c, Number(opts.time));
        await startContainer(store, c.id);
        await recordContainerEvent(store.root, "restart", c); // after stop's and start's, as Docker
        console.log(name);
      }
    });
}

function registerRename(program: Command): void {
  program
    .command("rename")
    .description("Rename a container")
    .argument("<container>")
    .argument("<new-name>")
    .action(async (name: string, newName: string, _opts: unknown, cmd: Command) => {
      const { store } = contextFrom(cmd);
      await renameContainer(store.root, await findContainer(store.root, name), newName);
    });
}

function registerContainerPrune(container: Command): void {
  container
    .command("prune")
    .description("Remove all stopped containers")
    .option("-f, --force", "do not ask (minibox never asks)")
    .action(async (_opts: unknown, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const { ids, bytes } = await pruneContainers(store.root);
      console.log(
        `Deleted Containers:\n${ids.map((id) => `${id}\n`).join("")}\nTotal reclaimed space: ${humanSize(bytes)}`,
      );
    });
}
