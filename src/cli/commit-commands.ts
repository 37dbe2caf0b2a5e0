/** `diff` and `commit`: what a container changed, and an image made of it. */
import type { Command } from "commander";
import { MiniboxError } from "../errors.js";
import { contextFrom } from "./context.js";
import { collect } from "./options.js";

export function registerCommitCommands(program: Command): void {
  const container =
    program.commands.find((c) => c.name() === "container") ?? program.command("container");
  for (const parent of [program, container]) {
    registerDiff(parent);
    registerCommit(parent);
  }
}

function registerDiff(parent: Command): void {
  parent
    .command("diff")
    .description("Inspect changes to files or directories on a container's filesystem")
    .argument("<container>", "name or ID")
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const { findContainer } = await import("../runtime/lifecycle.js");
      const { containerChanges } = await import("../runtime/changes.js");
      const { imageLayerDirs } = await import("../image/image-tree.js");
      const { containerPaths } = await import("../layout.js");
      const c = await findContainer(store.root, name);
      const image = (await store.readIndex()).images[c.imageId];
      if (!image) {
        throw new MiniboxError(
          `the image of container ${c.name} (${c.imageId}) is no longer in the store`,
        );
      }
      const changes = containerChanges(
        containerPaths(store.root, c.id).upper,
        imageLayerDirs(store, image),
      );
      for (const change of changes) process.stdout.write(`${change.kind} ${change.path}\n`);
    });
}

function registerCommit(parent: Command): void {
  parent
    .command("commit")
    .description("Create a new image from a container's changes")
    .argument("<container>", "name or ID")
    .argument("[repository]", "REPOSITORY[:TAG] for the new image")
    .option("-a, --author <author>", 'author (e.g. "John Hannibal Smith <hannibal@a-team.com>")')
    .option(
      "-c, --change <instruction>",
      "apply a Dockerfile instruction to the image (repeatable)",
      collect,
    )
    .option("-m, --message <message>", "commit message")
    .option("-p, --pause", "pause the container while committing (the default)")
    .option("--no-pause", "do not pause a running container while committing")
    .action(
      async (
        name: string,
        reference: string | undefined,
        opts: { author?: string; change?: string[]; message?: string; pause?: boolean },
        cmd: Command,
      ) => {
        const { store } = contextFrom(cmd);
        const { commitContainer } = await import("../build/container-commit.js");
        const image = await commitContainer(store, name, {
          author: opts.author,
          message: opts.message,
          changes: opts.change ?? [],
          reference,
          pause: opts.pause !== false,
        });
        console.log(image.id);
      },
    );
}
