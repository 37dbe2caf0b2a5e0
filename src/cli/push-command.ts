/** push: an image from the store to a registry, with Docker's output. */
import type { Command } from "commander";
import { MiniboxError } from "../errors.js";
import {
  formatReference,
  type ImageReference,
  parseReference,
  repositoryName,
} from "../image/reference.js";
import type { Store } from "../image/store.js";
import { contextFrom } from "./context.js";

export function registerPushCommand(program: Command): void {
  program
    .command("push")
    .description("Upload an image to a registry")
    .argument("<image>", "NAME[:TAG]")
    .option("-a, --all-tags", "push every tag of the repository")
    .option("-q, --quiet", "print only the pushed reference")
    .action(async (image: string, opts: { quiet?: boolean; allTags?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const named = parseReference(image);
      const refs = opts.allTags ? await allTags(ctx.store, named, image) : [named];
      // Loaded on demand, like pull: only these commands need the registry client.
      const { pushImage } = await import("../image/push.js");
      const { createReporter } = await import("./progress.js");
      for (const ref of refs) {
        const reporter = createReporter(Boolean(opts.quiet));
        try {
          const result = await pushImage(ctx.store, ref, {
            ...ctx.endpoints,
            credentials: ctx.credentials,
            reporter,
          });
          reporter.stop();
          // Docker's -q prints the reference pushed, as pull -q does.
          if (opts.quiet) console.log(formatReference({ ...ref, tag: result.tag }));
        } finally {
          reporter.stop();
        }
      }
    });
}

/** `push -a NAME`: every tag the store has for that repository, in order. */
async function allTags(
  store: Store,
  named: ImageReference,
  input: string,
): Promise<ImageReference[]> {
  // parseReference fills in "latest": look at what was typed.
  const last = input.slice(input.lastIndexOf("/") + 1);
  if (last.includes(":") || input.includes("@")) {
    throw new MiniboxError(
      `tag can't be used with --all-tags/-a: ${input}`,
      "give the repository only",
    );
  }
  const repo = repositoryName(named);
  const refs = Object.keys((await store.readIndex()).tags)
    .map((t) => parseReference(t))
    .filter((r) => repositoryName(r) === repo)
    .sort((a, b) => (a.tag ?? "").localeCompare(b.tag ?? ""));
  if (!refs.length) {
    throw new MiniboxError(`an image does not exist locally with the repository: ${input}`);
  }
  return refs;
}
