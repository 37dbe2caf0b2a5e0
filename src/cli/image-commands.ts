/** pull, images, image inspect, history, rmi, tag, import. */
import type { Command } from "commander";
import { shortId } from "../image/digest.js";
import {
  familiarTags,
  type HistoryRow,
  imageHistory,
  inspectImage,
  pruneImages,
  removeImage,
  tagImage,
} from "../image/images.js";
import { readConfigCreated } from "../image/metadata.js";
import { familiarString, formatReference, parseReference } from "../image/reference.js";
import type { Store } from "../image/store.js";
import { contextFrom } from "./context.js";
import { humanSize, table, timeAgo, truncate } from "./format.js";
import { renderTemplate } from "./template.js";

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

interface ListOptions {
  all?: boolean;
  quiet?: boolean;
  digests?: boolean;
  trunc: boolean;
}

function registerImageList(program: Command, image: Command): void {
  for (const [parent, name] of [
    [program, "images"],
    [image, "ls"],
  ] as const) {
    parent
      .command(name)
      .description("List images")
      .argument("[repository]", "only images of this repository")
      .option("-a, --all", "also the intermediate images of builds")
      .option("-q, --quiet", "only image IDs")
      .option("--digests", "show digests")
      .option("--no-trunc", "full image IDs")
      .action(async (repository: string | undefined, opts: ListOptions, cmd: Command) => {
        await listImages(cmd, repository, opts);
      });
  }
}

function printResults(results: Record<string, unknown>[], format: string | undefined): void {
  if (format) for (const r of results) console.log(renderTemplate(format, r));
  else console.log(JSON.stringify(results, null, 4));
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
      printResults(results, opts.format);
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
      printResults(results, opts.format);
    });
}

interface HistoryOptions {
  trunc: boolean;
  quiet?: boolean;
  human: boolean;
}

function registerHistory(program: Command, image: Command): void {
  for (const parent of [program, image]) {
    parent
      .command("history")
      .description("Show the history of an image, newest layer first")
      .argument("<image>")
      .option("--no-trunc", "do not shorten output")
      .option("-H, --human [bool]", "human-readable sizes and dates", (v) => v !== "false", true)
      .option("-q, --quiet", "only image IDs")
      .action(async (name: string, opts: HistoryOptions, cmd: Command) => {
        const rows = await imageHistory(contextFrom(cmd).store, name);
        const id = (r: HistoryRow) => (r.id === "<missing>" || !opts.trunc ? r.id : shortId(r.id));
        if (opts.quiet) {
          for (const r of rows) console.log(id(r));
          return;
        }
        console.log(historyTable(rows, opts, id));
      });
  }
}

function historyTable(
  rows: HistoryRow[],
  opts: HistoryOptions,
  id: (r: HistoryRow) => string,
): string {
  return table(
    ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
    rows.map((r) => [
      id(r),
      opts.human ? timeAgo(r.created) : r.created,
      opts.trunc ? truncate(r.createdBy.replace(/[\t\n]/g, " "), 45) : r.createdBy,
      opts.human ? humanSize(r.size) : String(r.size),
      r.comment,
    ]),
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

interface ImageRow {
  repo: string;
  tag: string;
  digest: string;
  id: string;
  created: string;
  size: number;
}

async function listImages(
  cmd: Command,
  repository: string | undefined,
  opts: ListOptions,
): Promise<void> {
  const ctx = contextFrom(cmd);
  const wanted = repository
    ? familiarString(parseReference(repository)).replace(/:latest$/, "")
    : undefined;
  const rows = (await imageRows(ctx.store, Boolean(opts.all))).filter(
    (r) => !wanted || r.repo === wanted,
  );
  rows.sort((a, b) => b.created.localeCompare(a.created) || a.repo.localeCompare(b.repo));
  if (opts.quiet) {
    for (const id of new Set(rows.map((r) => (opts.trunc ? shortId(r.id) : r.id)))) console.log(id);
    return;
  }
  console.log(imagesTable(rows, opts));
}

/** One row per repository:tag of each image (one <none> row for an untagged one). */
async function imageRows(store: Store, all: boolean): Promise<ImageRow[]> {
  const images = await store.listImages();
  // Docker hides a build's untagged intermediate images (those with children) unless -a.
  const parents = new Set(images.map((i) => i.record.parent));
  const rows: ImageRow[] = [];
  for (const { record, tags } of images) {
    if (!all && tags.length === 0 && parents.has(record.id)) continue;
    const created = await readConfigCreated(store, record);
    const digests = repoDigests(record.repoDigests);
    const names = familiarTags(tags);
    const entries = names.length ? names.map(splitTag) : [{ repo: "<none>", tag: "<none>" }];
    for (const { repo, tag } of entries) {
      const digest = digests.get(repo) ?? "<none>";
      rows.push({ repo, tag, digest, id: record.id, created, size: record.size });
    }
  }
  return rows;
}

/** Each repository knows the image by its own repo digest (pulled or pushed there). */
function repoDigests(repoDigests: string[]): Map<string, string> {
  return new Map(
    repoDigests.map((rd) => {
      const at = rd.lastIndexOf("@");
      const repo = familiarString(parseReference(rd.slice(0, at))).replace(/:latest$/, "");
      return [repo, rd.slice(at + 1)] as const;
    }),
  );
}

function imagesTable(rows: ImageRow[], opts: ListOptions): string {
  const header = [
    "REPOSITORY",
    "TAG",
    ...(opts.digests ? ["DIGEST"] : []),
    "IMAGE ID",
    "CREATED",
    "SIZE",
  ];
  return table(
    header,
    rows.map((r) => [
      r.repo,
      r.tag,
      ...(opts.digests ? [r.digest] : []),
      opts.trunc ? shortId(r.id) : r.id,
      timeAgo(r.created),
      humanSize(r.size),
    ]),
  );
}

function splitTag(name: string): { repo: string; tag: string } {
  const colon = name.lastIndexOf(":");
  return colon > name.lastIndexOf("/")
    ? { repo: name.slice(0, colon), tag: name.slice(colon + 1) }
    : { repo: name, tag: "latest" };
}
