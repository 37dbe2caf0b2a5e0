/**
 * `minibox events` (and `system events`): the journal's events, Docker's way.
 * --since/--until pick a window; without --until it follows, printing
 * events as other commands append them until Ctrl-C or SIGTERM (with --until
 * in the future, until then). Without --since or --until only new events
 * are shown, as Docker does.
 *
 * Following polls the journal every 200 ms rather than using fs.watch: the
 * journal is renamed when it rotates (a watch on the file would stay on the
 * old inode), a watch on <root> would wake for every write to the store, and
 * inotify misses writes made through some mounts (NFS, overlay lower dirs).
 * A poll is one stat(2) while nothing happens.
 */
import type { Command } from "commander";
import { JournalReader, type MiniboxEvent, nowNano } from "../events/journal.js";
import { parseEventTime } from "../events/time.js";
import { jsonText } from "../json-text.js";
import { contextFrom } from "./context.js";
import { parseEventFilters } from "./events-filter.js";
import { EventView, eventLine } from "./events-view.js";
import { collect } from "./options.js";
import { parseTemplate, renderTemplate } from "./template.js";

interface EventsOptions {
  since?: string;
  until?: string;
  filter?: string[];
  format?: string;
}

const POLL_MS = 200;

export function registerEventsCommand(program: Command): void {
  const system = program.commands.find((c) => c.name() === "system");
  for (const parent of system ? [program, system] : [program]) {
    parent
      .command("events")
      .description("Show container, image and volume events (follows until --until or Ctrl-C)")
      .option(
        "--since <time>",
        "events from this time (RFC 3339, Unix timestamp, or a duration like 10m)",
      )
      .option("--until <time>", "events up to this time, then exit")
      .option(
        "-f, --filter <key=value>",
        "type, event, container, image, label, volume (repeatable)",
        collect,
      )
      .option("--format <format>", "a Go template, or json, e.g. '{{json .}}'")
      .action(async (opts: EventsOptions, cmd: Command) => {
        await showEvents(contextFrom(cmd).store.root, opts);
      });
  }
}

async function showEvents(root: string, opts: EventsOptions): Promise<void> {
  // Everything checked before anything is printed: bad input is one line.
  const now = nowNano();
  const since = opts.since === undefined ? undefined : parseEventTime("--since", opts.since, now);
  const until = opts.until === undefined ? undefined : parseEventTime("--until", opts.until, now);
  const wanted = parseEventFilters(opts.filter ?? []);
  const render = renderer(opts.format);
  const inWindow = (e: MiniboxEvent) =>
    (since === undefined || e.timeNano >= since) && (until === undefined || e.timeNano <= until);
  const print = (events: MiniboxEvent[]) => {
    const lines = events.filter((e) => inWindow(e) && wanted(e)).map((e) => `${render(e)}\n`);
    if (lines.length > 0) process.stdout.write(lines.join(""));
  };
  const reader = new JournalReader(root);
  const past = reader.read();
  if (since !== undefined || until !== undefined) print(past);
  if (until !== undefined && until <= now) return;
  await follow(reader, print, until);
}

/** Docker's line, `json` (one object a line), or a template rendered per event. */
function renderer(format: string | undefined): (e: MiniboxEvent) => string {
  if (format === undefined || format.trim() === "") return eventLine;
  if (format.trim() === "json") return (e) => jsonText(new EventView(e));
  const template = parseTemplate(format.replace(/\\t/g, "\t").replace(/\\n/g, "\n"));
  return (e) => renderTemplate(template, new EventView(e));
}

/** Print what is appended until SIGINT/SIGTERM, or until `until` has passed. */
async function follow(
  reader: JournalReader,
  print: (events: MiniboxEvent[]) => void,
  until: bigint | undefined,
): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const finish = (err?: unknown) => {
      clearInterval(timer);
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      if (err === undefined) resolve();
      else reject(err); // a template that fails on an event: one line, as before following
    };
    const poll = (last: boolean) => {
      try {
        print(reader.read());
        if (last || (until !== undefined && nowNano() > until)) finish();
      } catch (err) {
        finish(err);
      }
    };
    const stop = () => poll(true); // what came in since the last poll, then done
    const timer = setInterval(() => poll(false), POLL_MS);
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}
