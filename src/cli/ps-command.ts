/** ps: Docker's flags, filters and columns. */
import type { Command } from "commander";
import { shortId } from "../image/digest.js";
import { type ContainerView, listViews, readSpec, sweepContainers } from "../runtime/lifecycle.js";
import { psPorts } from "../runtime/network/ports.js";
import { labelsOf } from "./container-inspect.js";
import { contextFrom } from "./context.js";
import { type Filter, labelMatches, parseFilter } from "./filters.js";
import { humanDuration, table, timeAgo, truncate } from "./format.js";
import { collect } from "./options.js";

interface PsOptions {
  all?: boolean;
  quiet?: boolean;
  trunc: boolean;
  filter?: string[];
}

interface PsRow {
  c: ContainerView;
  command: string;
  labels: Record<string, string>;
}

export function registerPs(program: Command): void {
  program
    .command("ps")
    .description("List containers (running ones; -a for all)")
    .option("-a, --all", "show stopped containers too")
    .option("-q, --quiet", "only IDs")
    .option("--no-trunc", "do not shorten IDs and commands")
    .option("-f, --filter <key=value>", "label=…, status=…, name=… (repeatable)", collect)
    .action(async (opts: PsOptions, cmd: Command) => {
      const { store } = contextFrom(cmd);
      await sweepContainers(store.root);
      const rows = await psRows(store.root, opts);
      if (opts.quiet) {
        for (const { c } of rows) console.log(opts.trunc ? c.id.slice(0, 12) : c.id);
        return;
      }
      console.log(psTable(rows, opts.trunc));
    });
}

/** The containers to list, newest first. */
async function psRows(root: string, opts: PsOptions): Promise<PsRow[]> {
  const filters = (opts.filter ?? []).map((f) => parseFilter(f, ["label", "status", "name", "id"]));
  const rows: PsRow[] = [];
  for (const c of await listViews(root)) {
    const spec = await readSpec(root, c.id).catch(() => undefined);
    const labels = spec ? labelsOf(spec.annotations) : {};
    if (!opts.all && !c.running && !filters.some((f) => f.key === "status")) continue;
    if (!filters.every((f) => matches(f, c, labels))) continue;
    rows.push({ c, command: spec ? spec.process.args.join(" ") : "", labels });
  }
  return rows.sort((a, b) => b.c.created.localeCompare(a.c.created));
}

function psTable(rows: PsRow[], trunc: boolean): string {
  return table(
    ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"],
    rows.map(({ c, command }) => [
      trunc ? c.id.slice(0, 12) : c.id,
      // Run by image ID (build steps are): the short ID, as Docker shows it.
      trunc && c.imageRef.replace(/^sha256:/, "") === c.imageId.replace(/^sha256:/, "")
        ? shortId(c.imageId)
        : c.imageRef,
      // Docker shortens, then quotes: "/bin/sh -c echo st…"
      JSON.stringify(trunc ? truncate(command, 20) : command),
      timeAgo(c.created),
      statusText(c),
      psPorts(c),
      c.name,
    ]),
  );
}

/** Docker's STATUS column: "Up 3 seconds", "Exited (0) 2 minutes ago", "Created". */
export function statusText(c: ContainerView, now = Date.now()): string {
  if (c.running) return `Up ${humanDuration(now - Date.parse(c.startedAt ?? c.created))}`;
  if (c.status === "created") return "Created";
  return `Exited (${c.exitCode ?? 0}) ${c.finishedAt ? timeAgo(c.finishedAt, now) : ""}`.trimEnd();
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
