/**
 * minibox-runc's verbs on containers — create, start, run, state, kill,
 * delete, list — with runc's flags, wired to src/runtime/oci/lifecycle.ts.
 */
import { readdirSync } from "node:fs";
import type { Command } from "commander";
import { MiniboxError } from "../errors.js";
import {
  formatListJson,
  formatListTable,
  type ListedContainer,
} from "../runtime/oci/container-list.js";
import { type ExecFlags, execProcess } from "../runtime/oci/exec-process.js";
import {
  createContainer,
  deleteContainer,
  killContainer,
  runContainer,
  startContainer,
} from "../runtime/oci/lifecycle.js";
import { ociState, readRecord, stateText } from "../runtime/oci/runtime-state.js";
import type { GlobalOptions } from "./runtime-verbs.js";

interface CreateFlags {
  bundle?: string;
  pidFile?: string;
  consoleSocket?: string;
  preserveFds: string;
  detach?: boolean;
}

/** --preserve-fds N: a count of descriptors, from 3 on. */
function preserveFds(flags: { preserveFds: string }): number {
  const n = Number(flags.preserveFds);
  if (!Number.isInteger(n) || n < 0) {
    throw new MiniboxError(
      `invalid --preserve-fds ${JSON.stringify(flags.preserveFds)}: a number of descriptors`,
    );
  }
  return n;
}

function createOptions(command: Command): Command {
  return command
    .option("-b, --bundle <dir>", "path to the bundle (default: the current directory)")
    .option(
      "--console-socket <path>",
      "unix socket to send the pty master to (with process.terminal)",
    )
    .option("--pid-file <file>", "write the init's PID here")
    .option("--no-pivot", "accepted for runc compatibility: minibox always uses pivot_root")
    .option("--no-new-keyring", "accepted for runc compatibility: minibox makes no session keyring")
    .option("--preserve-fds <n>", "extra descriptors to pass to the container", "0")
    .argument("<container-id>");
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** The containers under --root, each with its status read now. */
function containersUnder(root: string): ListedContainer[] {
  let ids: string[];
  try {
    ids = readdirSync(root).sort();
  } catch {
    return [];
  }
  const out: ListedContainer[] = [];
  for (const id of ids) {
    try {
      const s = ociState(root, readRecord(root, id));
      out.push({
        id,
        pid: s.pid,
        status: s.status,
        bundle: s.bundle,
        created: s.created,
        owner: s.owner,
      });
    } catch {
      // not a container (yet): an aborted create, another tool's file
    }
  }
  return out;
}

export function registerContainerVerbs(program: Command, globals: () => GlobalOptions): void {
  createOptions(
    program.command("create").description("create a container (its init waits for start)"),
  ).action(async (id: string, flags: CreateFlags) => {
    await createContainer({ root: globals().root, id, ...flags, preserveFds: preserveFds(flags) });
  });
  program
    .command("start")
    .description("start the program of a created container")
    .argument("<container-id>")
    .action((id: string) => startContainer(globals().root, id));
  createOptions(program.command("run").description("create and run a container"))
    .option("-d, --detach", "detach from the container's process")
    .option("--keep", "accepted for runc compatibility")
    .action(async (id: string, flags: CreateFlags) => {
      process.exitCode = await runContainer({
        root: globals().root,
        id,
        ...flags,
        preserveFds: preserveFds(flags),
      });
    });
  registerExecVerb(program, globals);
  registerInspectVerbs(program, globals);
}

function registerExecVerb(program: Command, globals: () => GlobalOptions): void {
  program
    .command("exec")
    .description("run a process in a running container")
    .option("-p, --process <file>", "process.json: the process to run (instead of a command)")
    .option("-d, --detach", "detach from the process (the caller reaps it)")
    .option("--pid-file <file>", "write the process's PID here")
    .option("--console-socket <path>", "unix socket to send the pty master to (with -t)")
    .option("-t, --tty", "allocate a pseudo-TTY")
    .option("--cwd <dir>", "working directory in the container")
    .option("-e, --env <var>", "environment variable (repeatable)", collect, [])
    .option("-u, --user <uid[:gid]>", "user to run as")
    .option("-c, --cap <cap>", "add a capability (repeatable)", collect, [])
    .option("--no-new-privs", "set no_new_privs")
    .option("--preserve-fds <n>", "extra descriptors to pass to the process", "0")
    .argument("<container-id>")
    .argument("[command...]")
    .passThroughOptions()
    .action(async (id: string, command: string[], flags: ExecFlags & CreateFlags) => {
      const passFds = preserveFds(flags);
      process.exitCode = await execProcess(globals().root, id, command, { ...flags, passFds });
    });
}

/** state and list: read-only. */
function registerInspectVerbs(program: Command, globals: () => GlobalOptions): void {
  program
    .command("state")
    .description("output the state of a container")
    .argument("<container-id>")
    .action((id: string) => {
      const root = globals().root;
      process.stdout.write(stateText(ociState(root, readRecord(root, id))));
    });
  program
    .command("kill")
    .description("send a signal to the container's init (default SIGTERM)")
    .option("-a, --all", "send it to every process in the container")
    .argument("<container-id>")
    .argument("[signal]")
    .action((id: string, signal: string | undefined, flags: { all?: boolean }) =>
      killContainer(globals().root, id, signal, flags.all === true),
    );
  program
    .command("delete")
    .description("delete a container and what it holds")
    .option("-f, --force", "kill it first if it is still running")
    .argument("<container-id>")
    .action((id: string, flags: { force?: boolean }) =>
      deleteContainer(globals().root, id, flags.force === true),
    );
  program
    .command("list")
    .description("list the containers under --root")
    .option("-f, --format <format>", "table or json", "table")
    .option("-q, --quiet", "display only container IDs")
    .action((opts: { format: string; quiet?: boolean }) => {
      const containers = containersUnder(globals().root);
      if (opts.quiet) {
        for (const c of containers) process.stdout.write(`${c.id}\n`);
      } else if (opts.format === "table") process.stdout.write(formatListTable(containers));
      else if (opts.format === "json") process.stdout.write(formatListJson(containers));
      else throw new MiniboxError("invalid format option");
    });
}
