/** ps: Docker's flags, filters and columns. */
import type { Command } from "commander";
import { shortId } from "../image/digest.js";
import type { Store } from "../image/store.js";
import { containerPaths } from "../layout.js";
import { type HealthState, healthSuffix, readHealth } from "../runtime/health/probe.js";
import { type ContainerView, sweepContainers } from "../runtime/lifecycle.js";
import { requestsOf } from "../runtime/network/attachments.js";
import { psPorts } from "../runtime/network/ports.js";
import { summaryOf } from "../runtime/spec-summary.js";
import { networkModeOf } from "./container-inspect.js";
import { contextFrom } from "./context.js";
import { goTime, humanDuration, table, timeAgo, truncate } from "./format.js";
import { formatList } from "./list-format.js";
import { collect } from "./options.js";
import { psFilter } from "./ps-filters.js";

interface PsOptions {
  all?: boolean;
  quiet?: boolean;
  trunc: boolean;
  filter?: string[];
  format?: string;
}

interface PsRow {
  c: ContainerView;
  command: string;
  labels: Record<string, string>;
  /** Docker's .Networks: the networks it is on, or host/none. */
  networks: string[];
  /** State.Health (absent: no health check). */
  health?: HealthState;
}

/** The columns `--format 'table …'` heads each field with (Docker's names). */
const PS_HEADERS = {
  ID: "CONTAINER ID",
  Image: "IMAGE",
  Command: "COMMAND",
  CreatedAt: "CREATED AT",
  RunningFor: "CREATED",
  Ports: "PORTS",
  State: "STATE",
  Status: "STATUS",
  Size: "SIZE",
  Names: "NAMES",
  Labels: "LABELS",
  Label: "LABEL",
  Mounts: "MOUNTS",
  Networks: "NETWORKS",
  LocalVolumes: "LOCAL VOLUMES",
};

export function registerPs(program: Command): void {
  program
    .command("ps")
    .description("List containers (running ones; -a for all)")
    .option("-a, --all", "show stopped containers too")
    .option("-q, --quiet", "only IDs")
    .option("--no-trunc", "do not shorten IDs and commands")
    .option(
      "-f, --filter <key=value>",
      "status, label, name, ancestor, id, exited, before, since (repeatable)",
      collect,
    )
    .option("--format <template>", "a Go template, 'table TEMPLATE' or 'json'")
    .action(async (opts: PsOptions, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const rows = await psRows(store, opts, await sweepContainers(store.root));
      if (opts.quiet) {
        for (const { c } of rows) console.log(opts.trunc ? c.id.slice(0, 12) : c.id);
        return;
      }
      const fields = rows.map((r) => psFields(r, opts.trunc));
      for (const line of formatList(opts.format, fields, PS_HEADERS, () => psTable(fields)))
        console.log(line);
    });
}

/** The containers to list (the sweep's views: no second read of each one), newest first. */
async function psRows(store: Store, opts: PsOptions, views: ContainerView[]): Promise<PsRow[]> {
  const filter = await psFilter(opts.filter ?? [], store, views);
  const rows: PsRow[] = [];
  for (const c of views) {
    // Before anything else is read: `ps` skips stopped containers unread.
    if (!opts.all && !c.running && !filter.impliesAll) continue;
    const summary = await summaryOf(store.root, c);
    const labels = summary?.labels ?? {};
    if (!filter.matches(c, labels)) continue;
    const requested = requestsOf(c).map((r) => r.network);
    const networks =
      requested.length || !summary ? requested : [networkModeOf(c, summary.ownNetwork)];
    const command = summary ? summary.args.join(" ") : "";
    const health = await readHealth(containerPaths(store.root, c.id), c.healthcheck, c.running);
    rows.push({ c, command, labels, networks, health });
  }
  // ISO 8601 times in UTC sort as strings; localeCompare goes through ICU's
  // collator, ~9 ms for 100 rows (more than reading their states).
  return rows.sort((a, b) => (a.c.created < b.c.created ? 1 : a.c.created > b.c.created ? -1 : 0));
}

/** One container as Docker's ps formatter exposes it (and `--format json` prints it, keys sorted). */
function psFields({ c, command, labels, networks, health }: PsRow, trunc: boolean) {
  const mounts = (c.mounts ?? []).map((m) => {
    const name = m.Name || m.Source;
    return trunc ? truncate(name, 15) : name;
  });
  return {
    Command: JSON.stringify(trunc ? truncate(command, 20) : command),
    CreatedAt: goTime(c.created),
    ID: trunc ? c.id.slice(0, 12) : c.id,
    // Run by image ID (build steps are): the short ID, as Docker shows it.
    Image:
      trunc && c.imageRef.replace(/^sha256:/, "") === c.imageId.replace(/^sha256:/, "")
        ? shortId(c.imageId)
        : c.imageRef,
    Label: (key: unknown) => labels[String(key)] ?? "",
    Labels: Object.entries(labels)
      .map(([k, v]) => `${k}=${v}`)
      .sort()
      .join(","),
    LocalVolumes: String((c.mounts ?? []).filter((m) => m.Type === "volume").length),
    Mounts: mounts.join(","),
    Names: c.name,
    Networks: [...networks].sort().join(","),
    Ports: psPorts(c),
    RunningFor: timeAgo(c.created),
    // Without -s Docker has no size to show: its zero.
    Size: "0B",
    State: c.running ? "running" : c.status,
    Status: statusText(c, health),
  };
}

type PsFields = ReturnType<typeof psFields>;

function psTable(rows: PsFields[]): string {
  return table(
    ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"],
    rows.map((r) => [r.ID, r.Image, r.Command, r.RunningFor, r.Status, r.Ports, r.Names]),
  );
}

/**
 * Docker's STATUS column: "Up 3 seconds", "Up 3 seconds (healthy)",
 * "Exited (0) 2 minutes ago", "Created".
 */
export function statusText(c: ContainerView, health?: HealthState, now = Date.now()): string {
  if (c.running) {
    const up = `Up ${humanDuration(now - Date.parse(c.startedAt ?? c.created))}`;
    return `${up}${healthSuffix(health)}`;
  }
  if (c.status === "created") return "Created";
  return `Exited (${c.exitCode ?? 0}) ${c.finishedAt ? timeAgo(c.finishedAt, now) : ""}`.trimEnd();
}
