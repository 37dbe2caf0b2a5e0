/** exec, stats, top: looking into running containers. */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { MiniboxError } from "../errors.js";
import { openCgroup } from "../runtime/cgroups/index.js";
import { type ContainerView, findContainer, listViews } from "../runtime/lifecycle.js";
import { parseEnvFlag } from "../runtime/run-options.js";
import { contextFrom } from "./context.js";
import { table } from "./format.js";
import { collect } from "./options.js";

export function registerExecCommands(program: Command): void {
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
    .action(
      async (
        name: string,
        command: string[],
        opts: {
          interactive?: boolean;
          tty?: boolean;
          user?: string;
          workdir?: string;
          env?: string[];
        },
        cmd: Command,
      ) => {
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
        });
      },
    );

  program
    .command("stats")
    .description("Live CPU, memory and PIDs of running containers")
    .argument("[container...]")
    .option("--no-stream", "print one sample and exit")
    .option("--format <format>", "'json' for one JSON object per container")
    .action(async (names: string[], opts: { stream: boolean; format?: string }, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const pick = async () =>
        names.length
          ? Promise.all(names.map((n) => findContainer(store.root, n)))
          : (await listViews(store.root)).filter((c) => c.running);
      const once = !opts.stream || !process.stdout.isTTY;
      for (;;) {
        const containers = await pick();
        const rows = await sample(containers);
        const text =
          opts.format === "json"
            ? rows.map((r) => JSON.stringify(r)).join("\n")
            : table(
                [
                  "CONTAINER ID",
                  "NAME",
                  "CPU %",
                  "MEM USAGE / LIMIT",
                  "MEM %",
                  "NET I/O",
                  "BLOCK I/O",
                  "PIDS",
                ],
                rows.map((r) => [
                  r.ID,
                  r.Name,
                  r.CPUPerc,
                  r.MemUsage,
                  r.MemPerc,
                  r.NetIO,
                  r.BlockIO,
                  r.PIDs,
                ]),
              );
        if (!once) process.stdout.write("\u001b[2J\u001b[H");
        console.log(text);
        if (once) return;
      }
    });

  program
    .command("top")
    .description("The processes of a running container (host and container PIDs)")
    .argument("<container>")
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const c = await findContainer(store.root, name);
      const cgroup = running(c) && openCgroup(c.id, { parent: c.cgroupParent });
      if (!cgroup) throw new MiniboxError(`container ${c.id.slice(0, 12)} is not running`);
      const pids = new Set<number>();
      for (const file of cgroup.procsFiles) {
        for (const p of readFileSync(file, "utf8").split("\n").filter(Boolean)) pids.add(Number(p));
      }
      const rows = [...pids].sort((a, b) => a - b).flatMap((pid) => processRow(pid));
      console.log(table(["UID", "PID", "PPID", "CONTAINER PID", "STAT", "CMD"], rows));
    });
}

function running(c: ContainerView): boolean {
  return c.running;
}

/** One row of `top` from /proc: uid (as the host sees it), PIDs on both sides of the namespace. */
function processRow(pid: number): string[][] {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(status)?.[1] ?? "";
    const nspid = field("NSpid").split(/\s+/);
    const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
    return [
      [
        field("Uid").split(/\s+/)[0] ?? "",
        String(pid),
        field("PPid"),
        nspid.at(-1) ?? "",
        field("State").split(" ")[0] ?? "",
        cmd,
      ],
    ];
  } catch {
    return []; // exited meanwhile
  }
}

interface StatsRow {
  ID: string;
  Name: string;
  CPUPerc: string;
  MemUsage: string;
  MemPerc: string;
  NetIO: string;
  BlockIO: string;
  PIDs: string;
}

/** Two readings of each cgroup half a second apart: CPU % is the usage between them. */
async function sample(containers: ContainerView[]): Promise<StatsRow[]> {
  const cgroups = containers.map((c) => openCgroup(c.id, { parent: c.cgroupParent }));
  const first = cgroups.map((g) => g?.stats());
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, 500));
  const elapsedNs = Number(process.hrtime.bigint() - t0);
  return containers.map((c, i) => {
    const now = cgroups[i]?.stats();
    const before = first[i];
    const cpu = now && before ? ((now.cpuUsageNs - before.cpuUsageNs) / elapsedNs) * 100 : 0;
    const mem = now?.memoryUsage ?? 0;
    const limit = now?.memoryLimit ?? 0;
    return {
      ID: c.id.slice(0, 12),
      Name: c.name,
      CPUPerc: `${cpu.toFixed(2)}%`,
      MemUsage: `${binarySize(mem)} / ${binarySize(limit)}`,
      MemPerc: `${limit ? ((mem / limit) * 100).toFixed(2) : "0.00"}%`,
      NetIO: "0B / 0B",
      BlockIO: "0B / 0B",
      PIDs: String(now?.pids ?? 0),
    };
  });
}

/** docker stats shows memory in binary units: "1.5MiB / 80MiB". */
function binarySize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${Number(v.toFixed(2))}${units[u]}`;
}
