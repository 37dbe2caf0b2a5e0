/**
 * `build`: a Dockerfile, step by step, each step a new image on top of the
 * last (the classic builder's model, which the talk's output shows):
 *
 *   FROM        the base image (pulled if needed), or scratch
 *   RUN, COPY/ADD   a new layer (layer-step.ts)
 *   the rest    change only the config: a history entry with empty_layer
 *               (config-step.ts)
 *
 * Each step is looked up in the build cache first (build-cache.ts); after a
 * miss, every later step of the stage runs too.
 */
import { readFile } from "node:fs/promises";
import { posix } from "node:path";
import { MiniboxError } from "../errors.js";
import { recordImageEvent } from "../events/image-events.js";
import { shortId } from "../image/digest.js";
import { findImage, readConfig } from "../image/images.js";
import type { ImageConfig } from "../image/manifest.js";
import { familiarString, formatReference, parseReference } from "../image/reference.js";
import type { ImageRecord, Store } from "../image/store.js";
import { cacheKey, loadCache, saveCache } from "./build-cache.js";
import { type BuildOptions, stopIfCancelled } from "./build-options.js";
import { commitImage } from "./commit.js";
import { applyConfigStep, nop } from "./config-step.js";
import { type ContextFile, readContext, sendingContextMessage } from "./context.js";
import { expand, type Instruction, parseDockerfile } from "./dockerfile.js";
import { copyStep, runStep, type StepResult, sourceDateEpoch } from "./layer-step.js";

export { BuildInterrupted, type BuildOptions, type RunStepResult } from "./build-options.js";

const EMPTY_CONFIG: ImageConfig = {
  architecture: "amd64",
  os: "linux",
  config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] },
  rootfs: { type: "layers", diff_ids: [] },
  history: [],
};

/** One build in progress: what every step reads, and the state it moves on. */
interface Build {
  store: Store;
  opts: BuildOptions;
  /** The build context's files. */
  files: ContextFile[];
  /** Cache key → image ID (build-cache.ts). */
  cache: Record<string, string>;
  state: BuildState;
}

export async function build(store: Store, opts: BuildOptions): Promise<ImageRecord> {
  const instructions = await readInstructions(opts);
  const context = await readContext(opts.contextDir, opts.dockerfile);
  const b: Build = {
    store,
    opts,
    files: context.files,
    cache: await loadCache(store),
    state: { stages: [], globalArgs: {}, args: {}, config: EMPTY_CONFIG, cacheValid: false },
  };
  if (!opts.quiet) opts.out(sendingContextMessage(context.files));
  for (const [i, ins] of instructions.entries()) {
    stopIfCancelled(opts);
    opts.out(`Step ${i + 1}/${instructions.length} : ${ins.raw}`);
    await step(b, ins);
  }
  stopIfCancelled(opts);
  const built = b.state.stage?.image;
  if (!built) throw new MiniboxError("the Dockerfile built nothing but scratch");
  const image = await withLabels(store, opts.labels, built, b.state.config);
  opts.out(`Successfully built ${shortId(image.id)}`);
  await tagImage(store, opts, image);
  return image;
}

/** The Dockerfile's instructions, up to the --target stage. */
async function readInstructions(opts: BuildOptions): Promise<Instruction[]> {
  const text = await readFile(opts.dockerfile, "utf8").catch(() => {
    throw new MiniboxError(`cannot read ${opts.dockerfile}`, "give the Dockerfile's path with -f");
  });
  return stagesUpTo(parseDockerfile(text, posix.basename(opts.dockerfile)), opts.target);
}

async function step(b: Build, ins: Instruction): Promise<void> {
  if (ins.kind === "FROM") return fromStep(b.store, b.opts, ins, b.state);
  if (ins.kind === "ARG" && declareArg(b, ins) === "global") return;
  await cachedStep(b, ins);
}

/**
 * ARG: before the first FROM, a global ARG (for FROM lines and for stages
 * that redeclare it); after, the current stage's, which is also a step.
 */
function declareArg(b: Build, ins: Extract<Instruction, { kind: "ARG" }>): "global" | "stage" {
  const { state } = b;
  const value =
    b.opts.buildArgs[ins.name] ??
    (ins.defaultValue !== undefined ? expand(ins.defaultValue, state.args) : undefined);
  if (!state.stage) {
    state.globalArgs[ins.name] = value;
    return "global";
  }
  state.args[ins.name] = value ?? state.globalArgs[ins.name];
  return "stage";
}

/** A step other than FROM: from the cache if it can, else executed and committed. */
async function cachedStep(b: Build, ins: Instruction): Promise<void> {
  const { store, opts, state } = b;
  const stage = state.stage as Stage;
  const env = envOf(state.config, state.args);
  const from =
    ins.kind === "COPY" && ins.from !== undefined
      ? await copySourceImage(store, opts, state, expand(ins.from, state.args))
      : undefined;
  const key = await cacheKey(stage.image, ins, env, b.files, opts.contextDir, from);
  if (await useCached(b, stage, key)) return;
  state.cacheValid = false; // a miss: every later step of this stage runs too
  const created = new Date(sourceDateEpoch() ?? Date.now()).toISOString();
  const result = await execute(b, ins, stage.image, env, from);
  stage.image = await commitImage(
    store,
    stage.image,
    result.config,
    result.layer,
    result.history,
    created,
  );
  state.config = await readConfig(store, stage.image);
  b.cache[key] = stage.image.id;
  await saveCache(store, b.cache);
  opts.out(` ---> ${shortId(stage.image.id)}`);
}

async function useCached(b: Build, stage: Stage, key: string): Promise<boolean> {
  const cached = b.state.cacheValid ? b.cache[key] : undefined;
  const hit = cached ? (await b.store.readIndex()).images[cached] : undefined;
  if (!hit) return false;
  stage.image = hit;
  b.state.config = await readConfig(b.store, hit);
  b.opts.out(" ---> Using cache");
  b.opts.out(` ---> ${shortId(hit.id)}`);
  return true;
}

async function execute(
  b: Build,
  ins: Instruction,
  image: ImageRecord | undefined,
  env: Record<string, string | undefined>,
  from: { image?: ImageRecord } | undefined,
): Promise<StepResult> {
  const { store, opts, state } = b;
  const config: ImageConfig = JSON.parse(JSON.stringify(state.config));
  config.config ??= {};
  const vars = { ...state.args, ...env };
  if (ins.kind === "COPY" || ins.kind === "ADD") {
    return copyStep(store, ins, image, config, vars, b.files, opts.contextDir, from);
  }
  if (ins.kind === "RUN") return runStep(store, opts, ins, image, config, state.args);
  const text = applyConfigStep(ins, config.config, state.config, vars);
  return { config, history: { created_by: nop(text) } };
}

/** --label: one more image on top, with the labels added. */
async function withLabels(
  store: Store,
  labels: Record<string, string>,
  image: ImageRecord,
  config: ImageConfig,
): Promise<ImageRecord> {
  if (Object.keys(labels).length === 0) return image;
  const labelled: ImageConfig = JSON.parse(JSON.stringify(config));
  labelled.config = {
    ...labelled.config,
    Labels: { ...(labelled.config?.Labels ?? {}), ...labels },
  };
  return commitImage(
    store,
    image,
    labelled,
    undefined,
    { created_by: nop("LABEL (--label)") },
    new Date().toISOString(),
  );
}

async function tagImage(store: Store, opts: BuildOptions, image: ImageRecord): Promise<void> {
  const tags = (await store.readIndex()).tags;
  for (const tag of opts.tags) {
    const ref = parseReference(tag);
    const name = formatReference(ref);
    // A cached rebuild usually names the same image: no index write (and no lock) then.
    if (tags[name] !== image.id) {
      await store.updateIndex((index) => {
        index.tags[name] = image.id;
      });
    }
    await recordImageEvent(store, "tag", image.id, familiarString(ref));
    opts.out(`Successfully tagged ${tag.includes(":") ? tag : `${tag}:latest`}`);
  }
}

/** One FROM … [AS name] section of the Dockerfile, and the image it has got to. */
interface Stage {
  name?: string;
  image?: ImageRecord;
}

interface BuildState {
  /** Every stage begun so far; the last is the current one. */
  stages: Stage[];
  stage?: Stage;
  /** ARGs declared before the first FROM. */
  globalArgs: Record<string, string | undefined>;
  /** The current stage's ARGs. */
  args: Record<string, string | undefined>;
  config: ImageConfig;
  /** False after a cache miss in this stage: later steps cannot hit. */
  cacheValid: boolean;
}

/**
 * The instructions to run for `--target`: every stage up to and including
 * the target one (the classic builder runs the stages in order).
 */
export function stagesUpTo(instructions: Instruction[], target?: string): Instruction[] {
  if (target === undefined) return instructions;
  const start = instructions.findIndex(
    (i) => i.kind === "FROM" && i.stage?.toLowerCase() === target.toLowerCase(),
  );
  if (start < 0) {
    throw new MiniboxError(
      `failed to reach build target ${target} in Dockerfile`,
      "name a stage given with FROM … AS NAME",
    );
  }
  const next = instructions.findIndex((i, n) => n > start && i.kind === "FROM");
  return next < 0 ? instructions : instructions.slice(0, next);
}

/** FROM: an earlier stage by name, scratch, or an image (pulled when missing). */
async function fromStep(
  store: Store,
  opts: BuildOptions,
  ins: Extract<Instruction, { kind: "FROM" }>,
  state: BuildState,
): Promise<void> {
  const name = expand(ins.image, state.globalArgs);
  const stage: Stage = { name: ins.stage?.toLowerCase() };
  const earlier = state.stages.find((s) => s.name === name.toLowerCase());
  state.stages.push(stage);
  state.stage = stage;
  state.args = {};
  state.cacheValid = !opts.noCache;
  if (earlier) {
    stage.image = earlier.image;
  } else if (name !== "scratch") {
    stage.image = (await findImage(store, name))?.record ?? (await opts.pull(name));
  }
  if (!stage.image) {
    state.config = {
      ...EMPTY_CONFIG,
      architecture: opts.platform.architecture,
      os: opts.platform.os,
    };
    opts.out(" ---> scratch");
    return;
  }
  state.config = await readConfig(store, stage.image);
  opts.out(` ---> ${shortId(stage.image.id)}`);
}

/**
 * COPY --from=X: an earlier stage by name or index, else an image. The
 * record is undefined for a stage built FROM scratch with nothing in it.
 */
async function copySourceImage(
  store: Store,
  opts: BuildOptions,
  state: BuildState,
  from: string,
): Promise<{ image?: ImageRecord }> {
  const done = state.stages.slice(0, -1);
  if (/^\d+$/.test(from)) {
    const stage = done[Number(from)];
    if (!stage)
      throw new MiniboxError(`invalid from flag value ${from}: no stage ${from} before this one`);
    return { image: stage.image };
  }
  const stage = done.find((s) => s.name === from.toLowerCase());
  if (stage) return { image: stage.image };
  return { image: (await findImage(store, from))?.record ?? (await opts.pull(from)) };
}

function envOf(
  config: ImageConfig,
  args: Record<string, string | undefined>,
): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const e of config.config?.Env ?? []) {
    const eq = e.indexOf("=");
    env[e.slice(0, eq)] = e.slice(eq + 1);
  }
  return { ...args, ...env };
}
