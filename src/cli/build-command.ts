/** `build`: Docker's flags; the steps are in src/build/build.ts. */
import { join, resolve } from "node:path";
import { type Command, Option } from "commander";
import type { BuildInterrupt, BuildNetwork } from "../build/run-step.js";
import { MiniboxError } from "../errors.js";
import type { ImageRecord } from "../image/store.js";
import { type Context, contextFrom } from "./context.js";
import { collect } from "./options.js";

function pairs(values: string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf("=");
    if (eq <= 0) throw new MiniboxError(`invalid ${flag} ${JSON.stringify(v)}`, "use KEY=VALUE");
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

interface BuildOptions {
  tag?: string[];
  file?: string;
  buildArg?: string[];
  label?: string[];
  target?: string;
  cache: boolean;
  quiet?: boolean;
  network: BuildNetwork;
}

export function registerBuildCommand(program: Command): void {
  program
    .command("build")
    .description("Build an image from a Dockerfile")
    .argument("<context>", "the build context directory")
    .option("-t, --tag <name:tag>", "name the image (repeatable)", collect)
    .option("-f, --file <path>", "the Dockerfile (default: CONTEXT/Dockerfile)")
    .option("--build-arg <k=v>", "set a build argument (repeatable)", collect)
    .option("--label <k=v>", "add a label to the image (repeatable)", collect)
    .option("--target <stage>", "build up to this stage (FROM … AS STAGE)")
    .option("--no-cache", "do not use the build cache")
    .option("-q, --quiet", "print only the image ID")
    .addOption(
      new Option("--network <mode>", "network of the RUN steps: bridge (default), host or none")
        .default("bridge")
        .choices(["bridge", "host", "none"]),
    )
    .action(async (contextDir: string, opts: BuildOptions, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const { BuildInterrupt } = await import("../build/run-step.js");
      await ctx.store.init();
      const interrupt = new BuildInterrupt(ctx.store.root);
      interrupt.watch();
      try {
        const record = await runBuild(ctx, contextDir, opts, interrupt);
        if (opts.quiet) console.log(record.id);
      } finally {
        interrupt.unwatch();
      }
    });
}

async function runBuild(
  ctx: Context,
  contextDir: string,
  opts: BuildOptions,
  interrupt: BuildInterrupt,
): Promise<ImageRecord> {
  const { build } = await import("../build/build.js");
  const { runBuildStep, pullForBuild } = await import("../build/run-step.js");
  return build(ctx.store, {
    contextDir: resolve(contextDir),
    dockerfile: resolve(opts.file ?? join(contextDir, "Dockerfile")),
    tags: opts.tag ?? [],
    buildArgs: pairs(opts.buildArg ?? [], "--build-arg"),
    labels: pairs(opts.label ?? [], "--label"),
    noCache: !opts.cache,
    target: opts.target,
    quiet: Boolean(opts.quiet),
    platform: ctx.platform(),
    runStep: (image, argv, config) =>
      runBuildStep(ctx, image, argv, config, interrupt, opts.network),
    cancelled: () => interrupt.cancelled,
    pull: async (name) => {
      const { createReporter } = await import("./progress.js");
      return pullForBuild(ctx, name, createReporter(Boolean(opts.quiet)));
    },
    out: (line) => {
      if (!opts.quiet) console.log(line);
    },
  });
}
