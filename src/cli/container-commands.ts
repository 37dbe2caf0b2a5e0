/** ps, logs, stop, kill, rm, wait, container inspect — Docker's flags and output shapes. */
import { createReadStream, existsSync, statSync } from "node:fs";
import { createInterface } from "node:readline";
import type { Command } from "commander";
import { MiniboxError } from "../errors.js";
import { shortId } from "../image/digest.js";
import {
  type ContainerView,
  finalizeExit,
  findContainer,
  listViews,
  markStopped,
  parseSignal,
  readSpec,
  removeContainer,
  renameContainer,
  signalContainer,
  stopContainer,
  sweepContainers,
  waitExited,
} from "../runtime/lifecycle.js";
import { containerPaths } from "../runtime/rootfs.js";
import { contextFrom } from "./context.js";
import { type Filter, labelMatches, parseFilter } from "./filters.js";
import { humanDuration, table, timeAgo, truncate } from "./format.js";
import { collect } from "./options.js";
import { renderTemplate } from "./template.js";

export function registerContainerCommands(program: Command): void {
  program
    .command("ps")
    .description("List containers (running ones; -a for all)")
    .option("-a, --all", "show stopped containers too")
    .option("-q, --quiet", "only IDs")
    .option("--no-trunc", "do not shorten IDs and commands")
    .option("-f, --filter <key=value>", "label=…, status=…, name=… (repeatable)", collect)
    .action(
      async (
        opts: { all?: boolean; quiet?: boolean; trunc: boolean; filter?: string[] },
        cmd: Command,
      ) => {
        const { store } = contextFrom(cmd);
        await sweepContainers(store.root);
        const filters = (opts.filter ?? []).map((f) =>
          parseFilter(f, ["label", "status", "name", "id"]),
        );
        const rows: { c: ContainerView; command: string; labels: Record<string, string> }[] = [];
        for (const c of await listViews(store.root)) {
          const spec = await readSpec(store.root, c.id).catch(() => undefined);
          const labels = spec ? labelsOf(spec.annotations) : {};
          if (!opts.all && !c.running && !filters.some((f) => f.key === "status")) continue;
          if (!filters.every((f) => matches(f, c, labels))) continue;
          rows.push({
            c,
            command: spec ? spec.process.args.join(" ") : "",
            labels,
          });
        }
        rows.sort((a, b) => b.c.created.localeCompare(a.c.created));
        if (opts.quiet) {
          for (const { c } of rows) console.log(opts.trunc ? c.id.slice(0, 12) : c.id);
          return;
        }
        console.log(
          table(
            ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"],
            rows.map(({ c, command }) => [
              opts.trunc ? c.id.slice(0, 12) : c.id,
              // Run by image ID (build steps are): the short ID, as Docker shows it.
              opts.trunc && c.imageRef.replace(/^sha256:/, "") === c.imageId.replace(/^sha256:/, "")
                ? shortId(c.imageId)
                : c.imageRef,
              // Docker shortens, then quotes: "/bin/sh -c echo st…"
              JSON.stringify(opts.trunc ? truncate(command, 20) : command),
              timeAgo(c.created),
              statusText(c),
              "",
              c.name,
            ]),
          ),
        );
      },
    );

  program
    .command("logs")
    .description("Show a container's output (its json-file log)")
    .argument("<container>")
    .option("-f, --follow", "keep printing until the container exits")
    .option("-n, --tail <n>", "only the last N lines ('all' for every line)", "all")
    .option("-t, --timestamps", "prefix each line with its time")
    .option("--since <time>", "only lines after this time (RFC 3339, or a duration like 10m)")
    .action(
      async (
        name: string,
        opts: { follow?: boolean; tail: string; timestamps?: boolean; since?: string },
        cmd: Command,
      ) => {
        const { store } = contextFrom(cmd);
        const c = await findContainer(store.root, name);
        await printLogs(store.root, c, opts);
      },
    );

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
        if (signal === "SIGKILL" || signal === "SIGTERM" || signal === 9 || signal === 15) {
          await markStopped(store.root, c.id);
        }
        signalContainer(c, signal);
        console.log(name);
      }
    });

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

  program
    .command("wait")
    .description("Wait for containers to exit; print their exit codes")
    .argument("<container...>")
    .action(async (names: string[], _opts: unknown, cmd: Command) => {
      const { store } = contextFrom(cmd);
      for (const name of names) {
        const c = await findContainer(store.root, name);
        await waitExited(store.root, c.id);
        const after = await findContainer(store.root, c.id).catch(() => undefined);
        console.log(after?.exitCode ?? c.exitCode ?? 0);
      }
    });

  const container =
    program.commands.find((c) => c.name() === "container") ?? program.command("container");
  container.description("Manage containers");
  container
    .command("inspect")
    .description("Show a container's state and configuration as JSON")
    .argument("<container...>")
    .option("-f, --format <template>", "Go-template-like format, e.g. '{{.State.Pid}}'")
    .action(async (names: string[], opts: { format?: string }, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const results = [];
      for (const name of names)
        results.push(await inspectContainer(store.root, await findContainer(store.root, name)));
      if (opts.format) for (const r of results) console.log(renderTemplate(opts.format, r));
      else console.log(JSON.stringify(results, null, 4));
    });

  // The monitor runs this when a detached container exits (see native/monitor.c).
  program
    .command("container-exited", { hidden: true })
    .argument("<id>")
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const { store } = contextFrom(cmd);
      // This process *is* the monitor (it exec'd us): its PID names the run.
      if (await finalizeExit(store.root, id, undefined, process.pid)) {
        // A restart policy asks for another run. Docker waits 100 ms, doubling; so do we (at most 2 s).
        const state = await findContainer(store.root, id);
        await new Promise((r) =>
          setTimeout(r, Math.min(100 * 2 ** ((state.restartCount ?? 1) - 1), 2000)),
        );
        const { startContainer } = await import("../runtime/container.js");
        await startContainer(store, id);
      }
    });

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
        console.log(name);
      }
    });

  program
    .command("rename")
    .description("Rename a container")
    .argument("<container>")
    .argument("<new-name>")
    .action(async (name: string, newName: string, _opts: unknown, cmd: Command) => {
      const { store } = contextFrom(cmd);
      await renameContainer(store.root, await findContainer(store.root, name), newName);
    });

  container
    .command("prune")
    .description("Remove all stopped containers")
    .option("-f, --force", "do not ask (minibox never asks)")
    .action(async (_opts: unknown, cmd: Command) => {
      const { store } = contextFrom(cmd);
      await sweepContainers(store.root);
      const removed: string[] = [];
      for (const c of await listViews(store.root)) {
        if (c.running) continue;
        await removeContainer(store.root, c, false);
        removed.push(c.id);
      }
      console.log(
        `Deleted Containers:\n${removed.map((id) => `${id}\n`).join("")}\nTotal reclaimed space: 0B`,
      );
    });
}

/** Docker's STATUS column: "Up 3 seconds", "Exited (0) 2 minutes ago", "Created". */
export function statusText(c: ContainerView, now = Date.now()): string {
  if (c.running) return `Up ${humanDuration(now - Date.parse(c.startedAt ?? c.created))}`;
  if (c.status === "created") return "Created";
  return `Exited (${c.exitCode ?? 0}) ${c.finishedAt ? timeAgo(c.finishedAt, now) : ""}`.trimEnd();
}

function labelsOf(annotations: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(annotations ?? {}).filter(([k]) => !k.startsWith("minibox.")),
  );
}

function matches(f: Filter, c: ContainerView, labels: Record<string, string>): boolean {
  switch (f.key) {
    case "label":
      return labelMatches(f.value, labels);
    case "status":
      return (c.running ? "running" : c.status) === f.value;
    case "name":
      return c.name.includes(f.value);
    default:
      return c.id.startsWith(f.value);
  }
}

interface LogEntry {
  log: string;
  stream: "stdout" | "stderr";
  time: string;
}

/** --since: an RFC 3339 time, a Unix time, or a duration back from now ("10m", "1h30m"). */
function sinceTime(text: string | undefined): number {
  if (!text) return Number.NEGATIVE_INFINITY;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length && parts.map((p) => p[0]).join("") === text) {
    return (
      Date.now() - parts.reduce((sum, p) => sum + Number(p[1]) * (units[p[2] as string] ?? 0), 0)
    );
  }
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new MiniboxError(`invalid --since value ${JSON.stringify(text)}`);
  return t;
}

async function printLogs(
  root: string,
  c: ContainerView,
  opts: { follow?: boolean; tail: string; timestamps?: boolean; since?: string },
): Promise<void> {
  const file = containerPaths(root, c.id).log;
  if (!existsSync(file)) {
    return; // nothing written yet
  }
  const since = sinceTime(opts.since);
  const tail = opts.tail === "all" ? Number.POSITIVE_INFINITY : Number(opts.tail);
  if (Number.isNaN(tail))
    throw new MiniboxError(`invalid --tail value ${JSON.stringify(opts.tail)}`);
  const print = (e: LogEntry) => {
    if (Date.parse(e.time) < since) return;
    const text = opts.timestamps ? `${e.time} ${e.log}` : e.log;
    (e.stream === "stderr" ? process.stderr : process.stdout).write(text);
  };
  // What is there now (the last `tail` entries), rotated files first (<log>.N is the oldest) …
  let offset = 0;
  const entries: LogEntry[] = [];
  const rotated = Array.from({ length: (c.logMaxFiles ?? 1) - 1 }, (_, i) => `${file}.${i + 1}`)
    .filter((f) => existsSync(f))
    .reverse();
  for (const f of [...rotated, file]) {
    offset = 0;
    const lines = createInterface({
      input: createReadStream(f),
      crlfDelay: Number.POSITIVE_INFINITY,
    });
    for await (const line of lines) {
      offset += Buffer.byteLength(line) + 1;
      if (!line) continue;
      entries.push(JSON.parse(line) as LogEntry);
      if (entries.length > tail) entries.shift();
    }
  }
  for (const e of tail === 0 ? [] : entries) print(e);
  if (!opts.follow) return;
  // … then what is appended, until the container's exit is recorded.
  for (;;) {
    const size = statSync(file).size;
    if (size < offset) offset = 0; // rotated meanwhile: the current file starts again
    if (size > offset) {
      let rest = "";
      for await (const chunk of createReadStream(file, {
        start: offset,
        end: size - 1,
        encoding: "utf8",
      })) {
        rest += chunk;
      }
      const complete = rest.slice(0, rest.lastIndexOf("\n") + 1);
      offset += Buffer.byteLength(complete);
      for (const line of complete.split("\n")) if (line) print(JSON.parse(line) as LogEntry);
    }
    const now = await findContainer(root, c.id).catch(() => undefined);
    if (!now?.running && statSync(file, { throwIfNoEntry: false })?.size === offset) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `container inspect`: the JSON shape of `docker container inspect`. */
export async function inspectContainer(
  root: string,
  c: ContainerView,
): Promise<Record<string, unknown>> {
  const spec = await readSpec(root, c.id);
  const paths = containerPaths(root, c.id);
  const res = spec.linux.resources;
  return {
    Id: c.id,
    Created: c.created,
    Path: spec.process.args[0],
    Args: spec.process.args.slice(1),
    State: {
      Status: c.running ? "running" : c.status,
      Running: c.running,
      Paused: false,
      Restarting: false,
      OOMKilled: Boolean(c.oomKilled),
      Dead: false,
      Pid: c.running ? (c.pid ?? 0) : 0,
      ExitCode: c.running ? 0 : (c.exitCode ?? 0),
      Error: c.error ?? "",
      StartedAt: c.startedAt ?? "0001-01-01T00:00:00Z",
      FinishedAt: c.finishedAt ?? "0001-01-01T00:00:00Z",
    },
    Image: c.imageId,
    ResolvConfPath: paths.resolvConf,
    HostnamePath: paths.hostname,
    HostsPath: paths.hosts,
    LogPath: c.monitorPid ? paths.log : "",
    Name: `/${c.name}`,
    HostConfig: {
      AutoRemove: c.autoRemove,
      Memory: res.memory?.limit ?? 0,
      MemorySwap: res.memory?.swap ?? 0,
      NanoCpus: res.cpu?.quota
        ? Math.round((res.cpu.quota / (res.cpu.period ?? 100_000)) * 1e9)
        : 0,
      CpuShares: res.cpu?.shares ?? 0,
      PidsLimit: res.pids?.limit ?? 0,
      ReadonlyRootfs: spec.root.readonly,
      CgroupParent: c.cgroupParent ?? "",
      CapAdd: null,
      CapDrop: null,
      Binds: c.binds?.length ? c.binds : null,
    },
    Config: {
      Hostname: spec.hostname,
      User: `${spec.process.user.uid}:${spec.process.user.gid}`,
      Tty: spec.process.terminal,
      Env: spec.process.env,
      Cmd: spec.process.args,
      Image: c.imageRef,
      WorkingDir: spec.process.cwd,
      Entrypoint: null,
      Labels: labelsOf(spec.annotations),
    },
    Mounts: c.mounts ?? [],
    GraphDriver: {
      Name: "overlay",
      Data: {
        LowerDir: (await lowerDirs(root, c.imageId)).join(":"),
        MergedDir: paths.rootfs,
        UpperDir: paths.upper,
        WorkDir: paths.work,
      },
    },
  };
}

/** The image's layer directories, top first (overlayfs' lowerdir order). */
async function lowerDirs(root: string, imageId: string): Promise<string[]> {
  const { Store } = await import("../image/store.js");
  const store = new Store(root);
  const image = (await store.readIndex()).images[imageId];
  return (image?.layers ?? []).map((l) => store.layerDiffDir(l.chainId)).reverse();
}
