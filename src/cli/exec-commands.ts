/** exec, stats, top: looking into running containers. The figures come from src/runtime/{stats,top}.ts. */
import type { Command } from "commander";
import { findContainer } from "../runtime/lifecycle.js";
import { parseEnvFlag } from "../runtime/run-options.js";
import { type ContainerStats, sampleStats, statsTargets } from "../runtime/stats.js";
import { containerProcesses } from "../runtime/top.js";
import { contextFrom } from "./context.js";
import { binarySize, humanSize, table } from "./format.js";
import { formatList } from "./list-format.js";
import { collect } from "./options.js";

export function registerExecCommands(program: Command): void {
  registerExec(program);
  registerStats(program);
  registerTop(program);
}

interface ExecOptions {
  interactive?: boolean;
  tty?: boolean;
  user?: string;
  workdir?: string;
  env?: string[];
  privileged?: boolean;
}

function registerExec(program: Command): void {
  program
    .command("exec")
    .description("Run a command in a running container")
    .argument("<container>")
    .argument("<command...>")
    .passThroughOptions()
    .option("-i, --interactive", "keep stdin open")
    .option("-t, --tty", "allocate a pseudo-terminal")
    .option("-u, --user <user[:group]>", "user name or uid, optional group")
    .option("-w, --workdir <dir>", "working directory inside the container")
    .option("-e, --env <K=V>", "set an environment variable (repeatable)", collect)
    .option(
      "--privileged",
      "every capability for the command (the container's seccomp filter stays)",
    )
    .action(async (name: string, command: string[], opts: ExecOptions, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const c = await findContainer(store.root, name);
      const { execInContainer } = await import("../runtime/exec.js");
      const env = (opts.env ?? [])
        .map((e) => parseEnvFlag(e, process.env))
        .filter((e): e is string => !!e);
      process.exitCode = await execInContainer(store.root, c, {
        command,
        tty: Boolean(opts.tty),
        interactive: Boolean(opts.interactive),
        user: opts.user,
        workdir: opts.workdir,
        env,
        detach: false,
        privileged: Boolean(opts.privileged),
      });
    });
}

interface StatsOptions {
  stream: boolean;
  trunc: boolean;
  format?: string;
}

function registerStats(program: Command): void {
  program
    .command("stats")
    .description("Live CPU, memory and PIDs of running containers")
    .argument("[container...]")
    .option("--no-stream", "print one sample and exit")
    .option("--no-trunc", "do not shorten IDs")
    .option("--format <format>", "a Go template, 'table TEMPLATE' or 'json'")
    .action(async (names: string[], opts: StatsOptions, cmd: Command) => {
      const { store } = contextFrom(cmd);
      // Redrawing only makes sense on a terminal; a pipe gets one sample.
      const once = !opts.stream || !process.stdout.isTTY;
      for (;;) {
        const rows = (await sampleStats(await statsTargets(store.root, names))).map((s, i) =>
          dockerStatsRow(s, names[i], opts.trunc),
        );
        const lines = formatList(opts.format, rows, STATS_HEADERS, () => statsTable(rows));
        if (!once) process.stdout.write("\u001b[2J\u001b[H");
        console.log(lines.join("\n"));
        if (once) return;
      }
    });
}

/** The columns `stats --format 'table …'` heads each field with (Docker's names). */
const STATS_HEADERS = {
  Container: "CONTAINER",
  Name: "NAME",
  ID: "CONTAINER ID",
  CPUPerc: "CPU %",
  MemUsage: "MEM USAGE / LIMIT",
  MemPerc: "MEM %",
  NetIO: "NET I/O",
  BlockIO: "BLOCK I/O",
  PIDs: "PIDS",
};

/** `docker stats --format json`'s fields (keys sorted), already formatted as its table shows them. */
interface DockerStatsRow {
  BlockIO: string;
  CPUPerc: string;
  /** The name or ID as given on the command line (the short ID when none was). */
  Container: string;
  ID: string;
  MemPerc: string;
  MemUsage: string;
  Name: string;
  NetIO: string;
  PIDs: string;
}

function dockerStatsRow(
  s: ContainerStats,
  asGiven: string | undefined,
  trunc: boolean,
): DockerStatsRow {
  const id = trunc ? s.id.slice(0, 12) : s.id;
  return {
    // No block I/O accounting yet: Docker's zero shape.
    BlockIO: "0B / 0B",
    CPUPerc: `${s.cpuPercent.toFixed(2)}%`,
    Container: asGiven ?? id,
    ID: id,
    MemPerc: `${s.memoryPercent.toFixed(2)}%`,
    MemUsage: `${binarySize(s.memoryUsage)} / ${binarySize(s.memoryLimit)}`,
    Name: s.name,
    NetIO: `${humanSize(s.netRx, 3)} / ${humanSize(s.netTx, 3)}`,
    PIDs: String(s.pids),
  };
}

function statsTable(rows: DockerStatsRow[]): string {
  return table(
    ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"],
    rows.map((r) => [r.ID, r.Name, r.CPUPerc, r.MemUsage, r.MemPerc, r.NetIO, r.BlockIO, r.PIDs]),
  );
}

function registerTop(program: Command): void {
  program
    .command("top")
    .description("The processes of a running container (host and container PIDs)")
    .argument("<container>")
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const rows = containerProcesses(await findContainer(store.root, name));
      console.log(
        table(
          ["UID", "PID", "PPID", "CONTAINER PID", "STAT", "CMD"],
          rows.map((r) => [r.uid, String(r.pid), r.ppid, r.containerPid, r.state, r.command]),
        ),
      );
    });
}
