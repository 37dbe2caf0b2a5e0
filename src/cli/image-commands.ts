/** pull, images, image inspect, history, rmi, tag, import. */
import type { Command } from "commander";
import { shortId } from "../image/digest.js";
import {
  familiarTags,
  imageHistory,
  inspectImage,
  pruneImages,
  removeImage,
  tagImage,
} from "../image/images.js";
import { readConfigCreated } from "../image/metadata.js";
import { familiarString, formatReference, parseReference } from "../image/reference.js";
import { contextFrom } from "./context.js";
import { humanSize, table, timeAgo, truncate } from "./format.js";
import { renderTemplate } from "./template.js";

export function registerImageCommands(program: Command): void {
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

  const image = program.command("image").description("Manage images");
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
      .action(
        async (
          repository: string | undefined,
          opts: { all?: boolean; quiet?: boolean; digests?: boolean; trunc: boolean },
          cmd: Command,
        ) => {
          await listImages(cmd, repository, opts);
        },
      );
  }

  const inspect = async (names: string[], opts: { format?: string }, cmd: Command) => {
    const ctx = contextFrom(cmd);
    const results = [];
    for (const name of names) results.push(await inspectImage(ctx.store, name));
    if (opts.format) {
      for (const r of results) console.log(renderTemplate(opts.format, r));
    } else {
      console.log(JSON.stringify(results, null, 4));
    }
  };
  image
    .command("inspect")
    .description("Show an image's metadata as JSON")
    .argument("<image...>")
    .option("-f, --format <template>", "Go-template-like format, e.g. '{{.Config.Cmd}}'")
    .action(inspect);
  // Top-level `inspect`, like Docker's: a container if one has that name or ID, else an image.
  program
    .command("inspect")
    .description("Show a container's or an image's metadata as JSON")
    .argument("<name...>")
    .option("-f, --format <template>", "Go-template-like format, e.g. '{{.State.Pid}}'")
    .action(async (names: string[], opts: { format?: string }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const { findContainer } = await import("../runtime/lifecycle.js");
      const { inspectContainer } = await import("./container-commands.js");
      const results = [];
      for (const name of names) {
        const container = await findContainer(ctx.store.root, name).catch(() => undefined);
        results.push(
          container
            ? await inspectContainer(ctx.store.root, container)
            : await inspectImage(ctx.store, name),
        );
      }
      if (opts.format) for (const r of results) console.log(renderTemplate(opts.format, r));
      else console.log(JSON.stringify(results, null, 4));
    });

  const history = async (
    name: string,
    opts: { trunc: boolean; quiet?: boolean; human: boolean },
    cmd: Command,
  ) => {
    const ctx = contextFrom(cmd);
    const rows = await imageHistory(ctx.store, name);
    if (opts.quiet) {
      for (const r of rows) console.log(r.id === "<missing>" || !opts.trunc ? r.id : shortId(r.id));
      return;
    }
    console.log(
      table(
        ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
        rows.map((r) => [
          r.id === "<missing>" || !opts.trunc ? r.id : shortId(r.id),
          opts.human ? timeAgo(r.created) : r.created,
          opts.trunc ? truncate(r.createdBy.replace(/[\t\n]/g, " "), 45) : r.createdBy,
          opts.human ? humanSize(r.size) : String(r.size),
          r.comment,
        ]),
      ),
    );
  };
  for (const parent of [program, image]) {
    parent
      .command("history")
      .description("Show the history of an image, newest layer first")
      .argument("<image>")
      .option("--no-trunc", "do not shorten output")
      .option("-H, --human [bool]", "human-readable sizes and dates", (v) => v !== "false", true)
      .option("-q, --quiet", "only image IDs")
      .action(history);
  }

  const rmi = async (names: string[], opts: { force?: boolean }, cmd: Command) => {
    const ctx = contextFrom(cmd);
    for (const name of names) {
      for (const line of await removeImage(ctx.store, name, Boolean(opts.force))) console.log(line);
    }
  };
  program
    .command("rmi")
    .description("Remove images")
    .argument("<image...>")
    .option("-f, --force")
    .action(rmi);
  image
    .command("rm")
    .description("Remove images")
    .argument("<image...>")
    .option("-f, --force")
    .action(rmi);

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

  const tag = async (source: string, target: string, _opts: unknown, cmd: Command) => {
    await tagImage(contextFrom(cmd).store, source, target);
  };
  program
    .command("tag")
    .description("Give an image another name")
    .argument("<source>")
    .argument("<target>")
    .action(tag);
  image
    .command("tag")
    .description("Give an image another name")
    .argument("<source>")
    .argument("<target>")
    .action(tag);

  const importCmd = async (
    file: string,
    reference: string | undefined,
    opts: { platform?: string },
    cmd: Command,
  ) => {
    const ctx = contextFrom(cmd);
    const { importTarball } = await import("../image/import.js");
    const record = await importTarball(ctx.store, file, reference, ctx.platform(opts.platform));
    console.log(record.id);
  };
  for (const parent of [program, image]) {
    parent
      .command("import")
      .description(
        "Create a one-layer image from a root filesystem tarball (.tar or .tar.gz; - for stdin)",
      )
      .argument("<file>")
      .argument("[reference]", "NAME[:TAG] for the new image")
      .option("--platform <os/arch>", "platform to record in the image config")
      .action(importCmd);
  }
}

async function listImages(
  cmd: Command,
  repository: string | undefined,
  opts: { all?: boolean; quiet?: boolean; digests?: boolean; trunc: boolean },
): Promise<void> {
  const ctx = contextFrom(cmd);
  const images = await ctx.store.listImages();
  // Docker hides a build's untagged intermediate images (those with children) unless -a.
  const parents = new Set(images.map((i) => i.record.parent));
  const wanted = repository
    ? familiarString(parseReference(repository)).replace(/:latest$/, "")
    : undefined;
  const rows: {
    repo: string;
    tag: string;
    digest: string;
    id: string;
    created: string;
    size: number;
  }[] = [];
  for (const { record, tags } of images) {
    if (!opts.all && tags.length === 0 && parents.has(record.id)) continue;
    const created = await readConfigCreated(ctx.store, record);
    // Each repository knows the image by its own repo digest (pulled or pushed there).
    const digests = new Map(
      record.repoDigests.map((rd) => {
        const at = rd.lastIndexOf("@");
        const repo = familiarString(parseReference(rd.slice(0, at))).replace(/:latest$/, "");
        return [repo, rd.slice(at + 1)] as const;
      }),
    );
    const names = familiarTags(tags);
    const entries = names.length ? names.map(splitTag) : [{ repo: "<none>", tag: "<none>" }];
    for (const { repo, tag } of entries) {
      if (wanted && repo !== wanted) continue;
      const digest = digests.get(repo) ?? "<none>";
      rows.push({ repo, tag, digest, id: record.id, created, size: record.size });
    }
  }
  rows.sort((a, b) => b.created.localeCompare(a.created) || a.repo.localeCompare(b.repo));
  if (opts.quiet) {
    for (const id of new Set(rows.map((r) => (opts.trunc ? shortId(r.id) : r.id)))) console.log(id);
    return;
  }
  const header = [
    "REPOSITORY",
    "TAG",
    ...(opts.digests ? ["DIGEST"] : []),
    "IMAGE ID",
    "CREATED",
    "SIZE",
  ];
  console.log(
    table(
      header,
      rows.map((r) => [
        r.repo,
        r.tag,
        ...(opts.digests ? [r.digest] : []),
        opts.trunc ? shortId(r.id) : r.id,
        timeAgo(r.created),
        humanSize(r.size),
      ]),
    ),
  );
}

function splitTag(name: string): { repo: string; tag: string } {
  const colon = name.lastIndexOf(":");
  return colon > name.lastIndexOf("/")
    ? { repo: name.slice(0, colon), tag: name.slice(colon + 1) }
    : { repo: name, tag: "latest" };
}
