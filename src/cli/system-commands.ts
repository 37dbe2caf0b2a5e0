/** system df, system prune, builder prune — Docker's flags, prompts and output shapes. */
import type { Command } from "commander";
import { pruneCache } from "../build/build-cache.js";
import { MiniboxError } from "../errors.js";
import { shortId } from "../image/digest.js";
import { familiarTags, pruneImages, readConfig } from "../image/images.js";
import type { Store } from "../image/store.js";
import { NETWORK_ROOT } from "../layout.js";
import { type DiskUsageReport, diskUsageReport, type Totals } from "../runtime/disk-usage.js";
import { readSpec } from "../runtime/lifecycle.js";
import { pruneNetworks } from "../runtime/network/networks.js";
import { networkLiveness, pruneContainers } from "../runtime/prune.js";
import { pruneVolumes } from "../runtime/volumes.js";
import { confirm } from "./confirm.js";
import { contextFrom } from "./context.js";
import { humanSize, timeAgo, truncate } from "./format.js";
import { collect } from "./options.js";
import { statusText } from "./ps-command.js";
import { renderTemplate } from "./template.js";

export function registerSystemCommands(program: Command): void {
  const system = program.command("system").description("Manage minibox's disk use");
  registerDf(system);
  registerSystemPrune(system);
  const builder = program.command("builder").description("Manage builds");
  registerBuilderPrune(builder);
}

// ---- system df --------------------------------------------------------------

/** One row of the summary, with the method names of Docker's formatter (`{{.Type}}`, `{{json .}}`). */
interface DfRow {
  Type: string;
  TotalCount: string;
  Active: string;
  Size: string;
  Reclaimable: string;
}

function registerDf(system: Command): void {
  system
    .command("df")
    .description("Show disk usage: images, containers, local volumes, build cache")
    .option("-v, --verbose", "one line per image, container, volume and cache entry")
    .option("--format <template>", "a Go template per row, or {{json .}}")
    .action(async (opts: { verbose?: boolean; format?: string }, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const format = opts.format && opts.format !== "table" ? opts.format : undefined;
      if (format?.startsWith("table ") || (format && opts.verbose)) {
        throw new MiniboxError(
          `unsupported --format ${JSON.stringify(opts.format)}${opts.verbose ? " with -v" : ""}`,
          "use --format '{{json .}}' or '{{.Field}}' on the summary",
        );
      }
      const report = await diskUsageReport(store);
      if (opts.verbose) {
        console.log(await verboseDf(store, report));
        return;
      }
      const rows = summaryRows(report);
      if (format === "json") for (const r of rows) console.log(JSON.stringify(sortedKeys(r)));
      else if (format) for (const r of rows) console.log(renderTemplate(format, sortedKeys(r)));
      else
        console.log(
          dockerTable(
            Object.keys(DF_HEADERS).map((k) => DF_HEADERS[k as keyof DfRow]),
            rows.map(Object.values),
          ),
        );
    });
}

const DF_HEADERS: Record<keyof DfRow, string> = {
  Type: "TYPE",
  TotalCount: "TOTAL",
  Active: "ACTIVE",
  Size: "SIZE",
  Reclaimable: "RECLAIMABLE",
};

function summaryRows(r: DiskUsageReport): DfRow[] {
  const row = (type: string, t: Totals, percent = true): DfRow => ({
    Type: type,
    TotalCount: String(t.total),
    Active: String(t.active),
    Size: humanSize(t.size),
    // Docker's percentage is integer division, and the build cache has none.
    Reclaimable:
      percent && t.size > 0
        ? `${humanSize(t.reclaimable)} (${Math.floor((t.reclaimable * 100) / t.size)}%)`
        : humanSize(t.reclaimable),
  });
  return [
    row("Images", r.images),
    row("Containers", r.containers),
    row("Local Volumes", r.volumes),
    row("Build Cache", r.buildCache, false),
  ];
}

/** Go's encoding/json writes a map's keys sorted: `{{json .}}` prints them so. */
function sortedKeys(row: DfRow): Record<string, string> {
  return Object.fromEntries(Object.entries(row).sort(([a], [b]) => a.localeCompare(b)));
}

async function verboseDf(store: Store, r: DiskUsageReport): Promise<string> {
  const volumes = r.volumes.items.map((v) => [v.volume.Name, String(v.links), humanSize(v.size)]);
  const cache = r.buildCache.items.map((e) => [
    e.key.slice(0, 12),
    "regular",
    // Its data is the image's layers, counted (and shared) under Images.
    "0B",
    timeAgo(e.createdAt),
    "",
    "0",
    "true",
  ]);
  return [
    "Images space usage:\n",
    dockerTable(
      [
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "CREATED",
        "SIZE",
        "SHARED SIZE",
        "UNIQUE SIZE",
        "CONTAINERS",
      ],
      await imageRows(store, r),
    ),
    "\nContainers space usage:\n",
    dockerTable(
      ["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"],
      await containerRows(store, r),
    ),
    "\nLocal Volumes space usage:\n",
    dockerTable(["VOLUME NAME", "LINKS", "SIZE"], volumes),
    `\nBuild cache usage: ${humanSize(r.buildCache.size)}\n`,
    dockerTable(
      ["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"],
      cache,
    ),
  ].join("\n");
}

async function imageRows(store: Store, r: DiskUsageReport): Promise<string[][]> {
  const images: string[][] = [];
  for (const i of r.images.items) {
    const [repo, tag] = splitTag(familiarTags(i.tags)[0]);
    const created = (await readConfig(store, i.record).catch(() => undefined))?.created;
    images.push([
      repo,
      tag,
      shortId(i.record.id),
      timeAgo(created ?? i.record.addedAt),
      humanSize(i.record.size),
      humanSize(i.sharedSize),
      humanSize(i.record.size - i.sharedSize),
      String(i.containers),
    ]);
  }
  return images;
}

async function containerRows(store: Store, r: DiskUsageReport): Promise<string[][]> {
  const containers: string[][] = [];
  for (const { view: c, size } of r.containers.items) {
    const spec = await readSpec(store.root, c.id).catch(() => undefined);
    containers.push([
      c.id.slice(0, 12),
      c.imageRef,
      JSON.stringify(truncate(spec?.process.args.join(" ") ?? "", 20)),
      String(c.mounts?.filter((m) => m.Type === "volume").length ?? 0),
      humanSize(size),
      timeAgo(c.created),
      statusText(c),
      c.name,
    ]);
  }
  return containers;
}

/** "registry:5000/app:v1" → ["registry:5000/app", "v1"]; no tag → <none>. */
function splitTag(ref: string | undefined): [string, string] {
  if (!ref) return ["<none>", "<none>"];
  const colon = ref.lastIndexOf(":");
  if (colon <= ref.lastIndexOf("/")) return [ref, "latest"];
  return [ref.slice(0, colon), ref.slice(colon + 1)];
}

/**
 * Docker's formatter tables: Go's tabwriter with a minimum cell width of 10
 * and a padding of 3 ("TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE").
 */
function dockerTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) =>
    Math.max(10, h.length + 3, ...rows.map((r) => (r[i] ?? "").length + 3)),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

// ---- system prune -------------------------------------------------------------

interface SystemPruneOptions {
  all?: boolean;
  volumes?: boolean;
  force?: boolean;
  filter?: string[];
}

function registerSystemPrune(system: Command): void {
  system
    .command("prune")
    .description("Remove stopped containers, unused networks, dangling images and the build cache")
    .option("-a, --all", "remove every image no container uses, not only dangling ones")
    .option("--volumes", "also remove anonymous volumes no container uses")
    .option("-f, --force", "do not prompt for confirmation")
    .option("--filter <filter>", "not supported yet (Docker's label= and until=)", collect)
    .action(async (opts: SystemPruneOptions, cmd: Command) => {
      const { store } = contextFrom(cmd);
      rejectFilters(opts.filter);
      if (!opts.force && !(await confirm(systemPruneWarning(opts)))) return;
      let reclaimed = 0;
      const containers = await pruneContainers(store.root);
      reclaimed += containers.bytes;
      section("Deleted Containers:", containers.ids);
      const networks = await pruneNetworks(NETWORK_ROOT, await networkLiveness(store.root));
      section(
        "Deleted Networks:",
        networks.map((n) => n.name),
      );
      if (opts.volumes) {
        // Docker ≥ 23: `system prune --volumes` removes anonymous volumes only, even with -a.
        const volumes = await pruneVolumes(store.root, false);
        reclaimed += volumes.bytes;
        section("Deleted Volumes:", volumes.names);
      }
      const images = await pruneImages(store, Boolean(opts.all));
      reclaimed += images.reclaimed;
      section("Deleted Images:", images.lines);
      const cache = await pruneCache(store);
      reclaimed += cache.bytes;
      section("Deleted build cache objects:", cache.keys);
      console.log(`Total reclaimed space: ${humanSize(reclaimed)}`);
    });
}

/** Docker's confirmation text for the options given. */
function systemPruneWarning(opts: SystemPruneOptions): string {
  const warnings = ["all stopped containers", "all networks not used by at least one container"];
  if (opts.volumes) warnings.push("all anonymous volumes not used by at least one container");
  warnings.push(
    opts.all
      ? "all images without at least one container associated to them"
      : "all dangling images",
  );
  warnings.push(opts.all ? "all build cache" : "unused build cache");
  return `WARNING! This will remove:\n${warnings.map((w) => `  - ${w}\n`).join("")}\nAre you sure you want to continue?`;
}

/** Docker prints each non-empty section followed by a blank line. */
function section(title: string, items: string[]): void {
  if (items.length > 0) console.log(`${title}\n${items.map((i) => `${i}\n`).join("")}`);
}

/** Docker's prune filters are label=, label!= and until=; minibox has none of them yet. */
function rejectFilters(filters: string[] | undefined): void {
  for (const f of filters ?? []) {
    const key = f.split("=")[0] ?? "";
    if (["label", "label!", "until"].includes(key)) {
      throw new MiniboxError(
        `the prune filter '${f}' is not supported yet`,
        "prune without --filter, or remove the objects by name",
      );
    }
    throw new MiniboxError(
      `invalid filter '${key}'`,
      "Docker's prune filters are label=, label!= and until=",
    );
  }
}

// ---- builder prune ----------------------------------------------------------

function registerBuilderPrune(builder: Command): void {
  builder
    .command("prune")
    .description("Remove the build cache")
    .option("-a, --all", "remove all build cache, not only dangling entries (the same here)")
    .option("-f, --force", "do not prompt for confirmation")
    .option("--filter <filter>", "not supported yet", collect)
    .action(async (opts: { all?: boolean; force?: boolean; filter?: string[] }, cmd: Command) => {
      const { store } = contextFrom(cmd);
      rejectFilters(opts.filter);
      const warning = opts.all
        ? "WARNING! This will remove all build cache. Are you sure you want to continue?"
        : "WARNING! This will remove all dangling build cache. Are you sure you want to continue?";
      if (!opts.force && !(await confirm(warning))) return;
      const { keys, bytes } = await pruneCache(store);
      section("Deleted build cache objects:", keys);
      console.log(`Total reclaimed space: ${humanSize(bytes)}`);
    });
}
