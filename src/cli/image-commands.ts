/** pull, images, image inspect, history, rmi, tag, import. */
import type { Command } from "commander";
import { shortId } from "../image/digest.js";
import {
  type HistoryRow,
  imageHistory,
  inspectImage,
  pruneImages,
  removeImage,
  tagImage,
} from "../image/images.js";
import { familiarString, formatReference, parseReference } from "../image/reference.js";
import { contextFrom } from "./context.js";
import { humanSize, table, timeAgo, truncate } from "./format.js";
import { registerImageList } from "./image-list.js";
import { formatList, printInspect } from "./list-format.js";
import { boolFlag } from "./options.js";

/** In the order `minibox --help` lists them; most have a twin under `image`. */
export function registerImageCommands(program: Command): void {
  registerPull(program);
  const image = program.command("image").description("Manage images");
  registerImageList(program, image);
  registerInspect(program, image);
  registerHistory(program, image);
  registerRmi(program, image);
  registerImagePrune(image);
  registerTag(program, image);
  registerImport(program, image);
}

function registerPull(program: Command): void {
  program
    .command("pull")
    .description("Download an image from a registry")
    .argument("<image>", "NAME[:TAG|@DIGEST]")
    .option("-q, --quiet", "print only the image reference")
    .option("--platform <os/arch>", "pull for another platform, e.g. linux/arm64")
    .action(async (image: string, opts: { quiet?: boolean; platform?: string }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const ref = parseReference(image);
      // Loaded on demand: only pulls need the registry client, gzip and tar.
      const { pullImage } = await import("../image/pull.js");
      const { createReporter } = await import("./progress.js");
      const reporter = createReporter(Boolean(opts.quiet));
      try {
        const result = await pullImage(ctx.store, ref, {
          ...ctx.endpoints,
          platform: ctx.platform(opts.platform),
          credentials: ctx.credentials,
          reporter,
        });
        reporter.stop();
        const name = familiarString(ref);
        if (!opts.quiet) {
          console.log(
            result.downloaded
              ? `Status: Downloaded newer image for ${name}`
              : `Status: Image is up to date for ${name}`,
          );
        }
        console.log(formatReference(ref));
      } finally {
        reporter.stop();
      }
    });
}

/** `image inspect`, and the top-level `inspect`: like Docker's, a container if one has that name or ID, else an image. */
function registerInspect(program: Command, image: Command): void {
  image
    .command("inspect")
    .description("Show an image's metadata as JSON")
    .argument("<image...>")
    .option("-f, --format <template>", "Go-template-like format, e.g. '{{.Config.Cmd}}'")
    .action(async (names: string[], opts: { format?: string }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const results = [];
      for (const name of names) results.push(await inspectImage(ctx.store, name));
      printInspect(results, opts.format);
    });
  program
    .command("inspect")
    .description("Show a container's or an image's metadata as JSON")
    .argument("<name...>")
    .option("-f, --format <template>", "Go-template-like format, e.g. '{{.State.Pid}}'")
    .action(async (names: string[], opts: { format?: string }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const { findContainer } = await import("../runtime/lifecycle.js");
      const { inspectContainer } = await import("./container-inspect.js");
      const results = [];
      for (const name of names) {
        const container = await findContainer(ctx.store.root, name).catch(() => undefined);
        results.push(
          container
            ? await inspectContainer(ctx.store.root, container)
            : await inspectImage(ctx.store, name),
        );
      }
      printInspect(results, opts.format);
    });
}

interface HistoryOptions {
  trunc: boolean;
  quiet?: boolean;
  human: boolean;
  format?: string;
}

/** The columns `history --format 'table …'` heads each field with (Docker's names). */
const HISTORY_HEADERS = {
  ID: "IMAGE",
  CreatedSince: "CREATED",
  CreatedAt: "CREATED AT",
  CreatedBy: "CREATED BY",
  Size: "SIZE",
  Comment: "COMMENT",
};

function registerHistory(program: Command, image: Command): void {
  for (const parent of [program, image]) {
    parent
      .command("history")
      .description("Show the history of an image, newest layer first")
      .argument("<image>")
      .option("--no-trunc", "do not shorten output")
      .option("-H, --human [bool]", "human-readable sizes and dates", boolFlag("--human"), true)
      .option("-q, --quiet", "only image IDs")
      .option("--format <template>", "a Go template, 'table TEMPLATE' or 'json'")
      .action(async (name: string, opts: HistoryOptions, cmd: Command) => {
        const rows = await imageHistory(contextFrom(cmd).store, name);
        const fields = rows.map((r) => historyFields(r, opts));
        if (opts.quiet) {
          for (const r of fields) console.log(r.ID);
          return;
        }
        const lines = formatList(opts.format, fields, HISTORY_HEADERS, () => historyTable(fields));
        for (const line of lines) console.log(line);
      });
  }
}

/** One history entry as Docker's history formatter exposes it (keys sorted for --format json). */
function historyFields(r: HistoryRow, opts: HistoryOptions) {
  const createdBy = r.createdBy.replace(/[\t\n]/g, " ");
  const createdAt = Number.isNaN(Date.parse(r.created))
    ? r.created
    : new Date(r.created).toISOString().replace(/\.\d+Z$/, "Z");
  return {
    Comment: r.comment,
    CreatedAt: createdAt,
    CreatedBy: opts.trunc ? truncate(createdBy, 45) : r.createdBy,
    CreatedSince: opts.human ? timeAgo(r.created) : createdAt,
    ID: r.id === "<missing>" || !opts.trunc ? r.id : shortId(r.id),
    Size: opts.human ? humanSize(r.size) : String(r.size),
  };
}

function historyTable(rows: ReturnType<typeof historyFields>[]): string {
  return table(
    ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
    rows.map((r) => [r.ID, r.CreatedSince, r.CreatedBy, r.Size, r.Comment]),
  );
}

function registerRmi(program: Command, image: Command): void {
  const rmi = async (names: string[], opts: { force?: boolean }, cmd: Command) => {
    const ctx = contextFrom(cmd);
    for (const name of names) {
      for (const line of await removeImage(ctx.store, name, Boolean(opts.force))) console.log(line);
    }
  };
  for (const [parent, name] of [
    [program, "rmi"],
    [image, "rm"],
  ] as const) {
    parent
      .command(name)
      .description("Remove images")
      .argument("<image...>")
      .option("-f, --force")
      .action(rmi);
  }
}

function registerImagePrune(image: Command): void {
  image
    .command("prune")
    .description("Remove dangling images (untagged, not a parent), or with -a all unused ones")
    .option("-a, --all", "every image no container uses, tagged or not")
    .option("-f, --force", "do not ask (minibox never asks)")
    .action(async (opts: { all?: boolean }, cmd: Command) => {
      const { lines, reclaimed } = await pruneImages(contextFrom(cmd).store, Boolean(opts.all));
      const list = lines.length ? `Deleted Images:\n${lines.map((l) => `${l}\n`).join("")}\n` : "";
      console.log(`${list}Total reclaimed space: ${humanSize(reclaimed)}`);
    });
}

function registerTag(program: Command, image: Command): void {
  for (const parent of [program, image]) {
    parent
      .command("tag")
      .description("Give an image another name")
      .argument("<source>")
      .argument("<target>")
      .action(async (source: string, target: string, _opts: unknown, cmd: Command) => {
        await tagImage(contextFrom(cmd).store, source, target);
      });
  }
}

function registerImport(program: Command, image: Command): void {
  for (const parent of [program, image]) {
    parent
      .command("import")
      .description(
        "Create a one-layer image from a root filesystem tarball (.tar or .tar.gz; - for stdin)",
      )
      .argument("<file>")
      .argument("[reference]", "NAME[:TAG] for the new image")
      .option("--platform <os/arch>", "platform to record in the image config")
      .action(
        async (
          file: string,
          reference: string | undefined,
          opts: { platform?: string },
          cmd: Command,
        ) => {
          const ctx = contextFrom(cmd);
          const { importTarball } = await import("../image/import.js");
          const platform = ctx.platform(opts.platform);
          const record = await importTarball(ctx.store, file, reference, platform);
          console.log(record.id);
        },
      );
  }
}
