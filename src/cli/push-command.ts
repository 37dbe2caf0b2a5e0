/** push: an image from the store to a registry, with Docker's output. */
import type { Command } from "commander";
import { formatReference, parseReference } from "../image/reference.js";
import { contextFrom } from "./context.js";

export function registerPushCommand(program: Command): void {
  program
    .command("push")
    .description("Upload an image to a registry")
    .argument("<image>", "NAME[:TAG]")
    .option("-q, --quiet", "print only the pushed reference")
    .action(async (image: string, opts: { quiet?: boolean }, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const ref = parseReference(image);
      // Loaded on demand, like pull: only these commands need the registry client.
      const { pushImage } = await import("../image/push.js");
      const { createReporter } = await import("./progress.js");
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
    });
}
