/** volume create, ls, inspect, rm, prune — Docker's flags and output shapes. */
import type { Command } from "commander";
import { MiniboxError } from "../errors.js";
import { parseLabelFlag } from "../runtime/run-options.js";
import {
  anonymousName,
  createVolume,
  getVolume,
  listVolumes,
  pruneVolumes,
  removeVolume,
  type Volume,
  volumeData,
  volumeUsers,
} from "../runtime/volumes.js";
import { contextFrom } from "./context.js";
import { allKeysMatch, type Filter, labelMatches, parseFilter } from "./filters.js";
import { humanSize, table } from "./format.js";
import { formatList, printInspect } from "./list-format.js";
import { collect } from "./options.js";

export function registerVolumeCommands(program: Command): void {
  const volume = program.command("volume").description("Manage volumes");
  registerVolumeCreate(volume);
  registerVolumeLs(volume);
  registerVolumeInspect(volume);
  registerVolumeRm(volume);
  registerVolumePrune(volume);
}

function registerVolumeCreate(volume: Command): void {
  volume
    .command("create")
    .description("Create a volume (a random 64-hex name when none is given)")
    .argument("[name]")
    .option("-l, --label <k=v>", "set a label (repeatable)", collect)
    .action(async (name: string | undefined, opts: { label?: string[] }, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const labels: Record<string, string> = {};
      for (const l of opts.label ?? []) {
        const [k, v] = parseLabelFlag(l);
        labels[k] = v;
      }
      const { volume: v } = await createVolume(store.root, name ?? anonymousName(), labels);
      console.log(v.Name);
    });
}

function registerVolumeLs(volume: Command): void {
  volume
    .command("ls")
    .alias("list")
    .description("List volumes")
    .option("-q, --quiet", "only names")
    .option("-f, --filter <k=v>", "dangling=true|false, name=…, label=… (repeatable)", collect)
    .option("--format <template>", "a Go template, 'table TEMPLATE' or 'json'")
    .action(async (opts: { quiet?: boolean; filter?: string[]; format?: string }, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const filters = (opts.filter ?? []).map(parseVolumeFilter);
      const shown: Volume[] = [];
      for (const v of await listVolumes(store.root)) {
        // Docker's rule: same key ORed, different keys ANDed.
        const results = new Map<Filter, boolean>();
        for (const f of filters) results.set(f, await matches(store.root, f, v));
        if (allKeysMatch(filters, (f) => results.get(f) === true)) shown.push(v);
      }
      if (opts.quiet) {
        for (const v of shown) console.log(v.Name);
        return;
      }
      const fields = shown.map((v) => volumeFields(store.root, v));
      const defaultTable = () =>
        table(
          ["DRIVER", "VOLUME NAME"],
          fields.map((v) => [v.Driver, v.Name]),
        );
      for (const line of formatList(opts.format, fields, VOLUME_HEADERS, defaultTable))
        console.log(line);
    });
}

/** The columns `volume ls --format 'table …'` heads each field with (Docker's names). */
const VOLUME_HEADERS = {
  Name: "VOLUME NAME",
  Driver: "DRIVER",
  Scope: "SCOPE",
  Mountpoint: "MOUNTPOINT",
  Labels: "LABELS",
  Label: "LABEL",
  Links: "LINKS",
  Size: "SIZE",
};

/** One volume as Docker's volume formatter exposes it (keys sorted for --format json). */
function volumeFields(root: string, v: Volume) {
  const labels = v.Labels ?? {};
  return {
    Availability: "N/A",
    Driver: "local",
    Group: "N/A",
    Label: (key: unknown) => labels[String(key)] ?? "",
    Labels: Object.entries(labels)
      .map(([k, val]) => `${k}=${val}`)
      .sort()
      .join(","),
    Links: "N/A",
    Mountpoint: volumeData(root, v.Name),
    Name: v.Name,
    Scope: "local",
    Size: "N/A",
    Status: "N/A",
  };
}

function registerVolumeInspect(volume: Command): void {
  volume
    .command("inspect")
    .description("Show volumes as JSON")
    .argument("<volume...>")
    .option("-f, --format <template>", "Go-template-like format, e.g. '{{.Mountpoint}}'")
    .action(async (names: string[], opts: { format?: string }, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const results = [];
      for (const name of names) {
        const v = await getVolume(store.root, name);
        // Docker's field order (alphabetical, as its JSON encoder writes them).
        results.push({
          CreatedAt: v.CreatedAt,
          Driver: "local",
          Labels: Object.keys(v.Labels ?? {}).length ? v.Labels : null,
          Mountpoint: volumeData(store.root, v.Name),
          Name: v.Name,
          Options: Object.keys(v.Options ?? {}).length ? v.Options : null,
          Scope: "local",
        });
      }
      printInspect(results, opts.format);
    });
}

function registerVolumeRm(volume: Command): void {
  volume
    .command("rm")
    .alias("remove")
    .description("Remove volumes (not while a container uses them)")
    .argument("<volume...>")
    .option("-f, --force", "no error for a volume that does not exist")
    .action(async (names: string[], opts: { force?: boolean }, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const errors: string[] = [];
      for (const name of names) {
        try {
          if (await removeVolume(store.root, name, Boolean(opts.force))) console.log(name);
        } catch (err) {
          if (!(err instanceof MiniboxError)) throw err;
          errors.push(err.message);
        }
      }
      // Docker removes what it can, then reports every failure.
      if (errors.length) throw new MiniboxError(errors.join("; "));
    });
}

function registerVolumePrune(volume: Command): void {
  volume
    .command("prune")
    .description("Remove unused anonymous volumes (-a: unused named ones too)")
    .option("-a, --all", "also unused named volumes")
    .option("-f, --force", "do not ask (minibox never asks)")
    .action(async (opts: { all?: boolean }, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const { names, bytes } = await pruneVolumes(store.root, Boolean(opts.all));
      const list = names.length ? `Deleted Volumes:\n${names.map((n) => `${n}\n`).join("")}\n` : "";
      console.log(`${list}Total reclaimed space: ${humanSize(bytes)}`);
    });
}

function parseVolumeFilter(text: string): Filter {
  const { key, value } = parseFilter(text, ["dangling", "name", "label"]);
  if (key === "dangling" && !["true", "false", "1", "0"].includes(value)) {
    throw new MiniboxError(`invalid filter 'dangling=${value}'`, "use dangling=true or false");
  }
  return { key, value };
}

async function matches(root: string, f: Filter, v: Volume): Promise<boolean> {
  switch (f.key) {
    case "dangling": {
      const dangling = (await volumeUsers(root, v.Name)).length === 0;
      return dangling === (f.value === "true" || f.value === "1");
    }
    case "name":
      return v.Name.includes(f.value);
    default:
      return labelMatches(f.value, v.Labels ?? {});
  }
}
