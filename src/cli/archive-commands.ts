/** save, load, export: images and containers as tar files, no registry needed. */
import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import type { Readable, Writable } from "node:stream";
import type { Command } from "commander";
import { MiniboxError } from "../errors.js";
import { familiarTags } from "../image/images.js";
import { contextFrom } from "./context.js";

export function registerArchiveCommands(program: Command): void {
  registerSave(program);
  registerLoad(program);
  registerExport(program);
}

function registerSave(program: Command): void {
  program
    .command("save")
    .description("Save images to a tar archive (docker-archive and OCI layout in one)")
    .argument("<image...>", "NAME[:TAG] or image ID")
    .option("-o, --output <file>", "write to a file instead of stdout")
    .action(async (images: string[], opts: { output?: string }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const { saveImages } = await import("../image/save.js");
      await writeOutput(opts.output, "save", (out) => saveImages(ctx.store, images, out));
    });
}

function registerLoad(program: Command): void {
  program
    .command("load")
    .description("Load images from a tar archive (docker-archive or OCI layout, may be gzipped)")
    .option("-i, --input <file>", "read from a file instead of stdin")
    .option("-q, --quiet", "do not print the loaded images")
    .option("--platform <os/arch>", "the platform to pick from a multi-platform image")
    .action(async (opts: { input?: string; quiet?: boolean; platform?: string }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      if (!opts.input && process.stdin.isTTY) {
        throw new MiniboxError(
          "requested load from stdin, but stdin is a terminal",
          "use -i FILE or redirect an archive into minibox load",
        );
      }
      const { loadArchive } = await import("../image/load.js");
      const input = opts.input ? await openInput(opts.input) : process.stdin;
      const loaded = await loadArchive(
        ctx.store,
        input,
        opts.input ?? "stdin",
        ctx.platform(opts.platform),
      );
      if (opts.quiet) return;
      for (const image of loaded) {
        for (const { tag, previousId } of image.moved) {
          console.log(
            `The image ${familiarTags([tag])[0]} already exists, renaming the old one with ID ${previousId} to empty string`,
          );
        }
        if (image.tags.length === 0) console.log(`Loaded image ID: ${image.id}`);
        for (const tag of familiarTags(image.tags)) console.log(`Loaded image: ${tag}`);
      }
    });
}

function registerExport(program: Command): void {
  program
    .command("export")
    .description("Export a container's filesystem as a tar archive")
    .argument("<container>", "name or ID")
    .option("-o, --output <file>", "write to a file instead of stdout")
    .action(async (container: string, opts: { output?: string }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const { exportContainer } = await import("../runtime/export.js");
      await writeOutput(opts.output, "export", (out) => exportContainer(ctx.store, container, out));
    });
}

/**
 * Output to a file is written next to it and renamed into place, so a
 * failure never leaves half an archive under the name asked for. stdout is
 * refused when it is a terminal, as Docker does: a tar is no use there.
 */
async function writeOutput(
  file: string | undefined,
  verb: string,
  write: (out: Writable) => Promise<void>,
): Promise<void> {
  if (!file) {
    if (process.stdout.isTTY) {
      throw new MiniboxError(
        `cowardly refusing to ${verb} to a terminal`,
        "use the -o flag or redirect the output",
      );
    }
    await write(process.stdout);
    return;
  }
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await write(createWriteStream(tmp, { mode: 0o644 }));
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EACCES" || code === "EISDIR") {
      throw new MiniboxError(`cannot write ${file}: ${(err as Error).message}`);
    }
    throw err;
  }
}

/** Opens the file first, so a missing one is one clear line rather than a stream error. */
async function openInput(file: string): Promise<Readable> {
  const stream = createReadStream(file);
  await new Promise<void>((resolve, reject) => {
    stream.once("open", () => resolve());
    stream.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new MiniboxError(
          `cannot open ${file}: ${err.code === "ENOENT" ? "no such file" : err.message}`,
        ),
      ),
    );
  });
  return stream;
}
