/**
 * `build`: a Dockerfile, step by step, each step a new image on top of the
 * last (the classic builder's model, which the talk's output shows):
 *
 *   FROM        the base image (pulled if needed), or scratch
 *   RUN         a container from the current image runs the command; its
 *               upper directory (what it changed) becomes the new layer
 *   COPY/ADD    the matched context files, laid out at the destination in a
 *               staging directory, become the new layer
 *   the rest    change only the config: a history entry with empty_layer
 *
 * A step's cache key is its parent image, its text after substitution, and
 * for COPY/ADD the checksum of what it copies (content, mode, owner, not
 * mtimes). Keys map to image IDs in <root>/build-cache.json.
 */
import { createHash, randomBytes } from "node:crypto";
import { lstat, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join, posix } from "node:path";
import { MiniboxError } from "../errors.js";
import { shortId } from "../image/digest.js";
import { imageLayerDirs, readImageFile } from "../image/image-tree.js";
import { findImage, readConfig } from "../image/images.js";
import type { ImageConfig, Platform } from "../image/manifest.js";
import { formatReference, parseReference } from "../image/reference.js";
import type { ImageRecord, Store } from "../image/store.js";
import { resolveChown } from "../runtime/user.js";
import { commitImage, type HistoryEntry, type NewLayer } from "./commit.js";
import { type ContextFile, matchSources, readContext, sendingContextMessage } from "./context.js";
import {
  contextSource,
  copyHistoryText,
  imageSource,
  planCopy,
  rejectUrls,
  removeStaging,
  stageCopy,
} from "./copy.js";
import { writeLayer } from "./diff.js";
import { expand, type Instruction, parseDockerfile } from "./dockerfile.js";

export interface BuildOptions {
  contextDir: string;
  dockerfile: string;
  tags: string[];
  buildArgs: Record<string, string>;
  noCache: boolean;
  /** --target: stop after this stage. */
  target?: string;
  labels: Record<string, string>;
  quiet: boolean;
  platform: Platform;
  /** Runs one RUN step in a container; returns its exit code and the container's upper dir + owner shift. */
  runStep: (image: ImageRecord, argv: string[], config: ImageConfig) => Promise<RunStepResult>;
  /** True once the user interrupted the build: it stops at the next step boundary. */
  cancelled?: () => boolean;
  /** Make sure FROM's image is in the store (pull it). */
  pull: (name: string) => Promise<ImageRecord>;
  out: (line: string) => void;
}

export interface RunStepResult {
  code: number;
  containerId: string;
  upperDir: string;
  idShift?: { uid: number; gid: number };
  remove: () => Promise<void>;
}

/** Ctrl-C or SIGTERM ended the build (exit 130, like a shell's interrupted command). */
export class BuildInterrupted extends MiniboxError {
  constructor() {
    super("the build was interrupted", undefined, 130);
  }
}

const EMPTY_CONFIG: ImageConfig = {
  architecture: "amd64",
  os: "linux",
  config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] },
  rootfs: { type: "layers", diff_ids: [] },
  history: [],
};

/** Metadata instructions, as Docker's history shows them ("/bin/sh -c #(nop)  CMD [...]"). */
function nop(raw: string): string {
  return `/bin/sh -c #(nop)  ${raw}`;
}

export async function build(store: Store, opts: BuildOptions): Promise<ImageRecord> {
  const text = await readFile(opts.dockerfile, "utf8").catch(() => {
    throw new MiniboxError(`cannot read ${opts.dockerfile}`, "give the Dockerfile's path with -f");
  });
  const instructions = stagesUpTo(
    parseDockerfile(text, posix.basename(opts.dockerfile)),
    opts.target,
  );
  const context = await readContext(opts.contextDir, opts.dockerfile);
  const cache = await loadCache(store);
  if (!opts.quiet) opts.out(sendingContextMessage(context.files));
  const state: BuildState = {
    stages: [],
    globalArgs: {},
    args: {},
    config: EMPTY_CONFIG,
    cacheValid: false,
  };
  const total = instructions.length;
  const stopIfCancelled = () => {
    if (opts.cancelled?.()) throw new BuildInterrupted();
  };
  for (const [i, ins] of instructions.entries()) {
    stopIfCancelled();
    opts.out(`Step ${i + 1}/${total} : ${ins.raw}`);
    if (ins.kind === "FROM") {
      await fromStep(store, opts, ins, state);
      continue;
    }
    if (ins.kind === "ARG") {
      const value =
        opts.buildArgs[ins.name] ??
        (ins.defaultValue !== undefined ? expand(ins.defaultValue, state.args) : undefined);
      // Before the first FROM: a global ARG, for FROM lines and for stages that redeclare it.
      if (!state.stage) {
        state.globalArgs[ins.name] = value;
        continue;
      }
      state.args[ins.name] = value ?? state.globalArgs[ins.name];
    }
    const stage = state.stage as Stage;
    const env = envOf(state.config, state.args);
    const from =
      ins.kind === "COPY" && ins.from !== undefined
        ? await copySourceImage(store, opts, state, expand(ins.from, state.args))
        : undefined;
    const key = await cacheKey(stage.image, ins, env, context.files, opts.contextDir, from);
    const cached = state.cacheValid ? cache[key] : undefined;
    const hit = cached ? (await store.readIndex()).images[cached] : undefined;
    if (hit) {
      stage.image = hit;
      state.config = await readConfig(store, hit);
      opts.out(" ---> Using cache");
      opts.out(` ---> ${shortId(hit.id)}`);
      continue;
    }
    state.cacheValid = false; // a miss: every later step of this stage runs too
    const created = new Date(sourceDateEpoch() ?? Date.now()).toISOString();
    const step = await execute(store, opts, ins, stage.image, state, env, context.files, from);
    stage.image = await commitImage(
      store,
      stage.image,
      step.config,
      step.layer,
      step.history,
      created,
    );
    state.config = await readConfig(store, stage.image);
    cache[key] = stage.image.id;
    await saveCache(store, cache);
    opts.out(` ---> ${shortId(stage.image.id)}`);
  }
  stopIfCancelled();
  let image = state.stage?.image;
  if (!image) throw new MiniboxError("the Dockerfile built nothing but scratch");
  if (Object.keys(opts.labels).length) {
    const labelled: ImageConfig = JSON.parse(JSON.stringify(state.config));
    labelled.config = {
      ...labelled.config,
      Labels: { ...(labelled.config?.Labels ?? {}), ...opts.labels },
    };
    image = await commitImage(
      store,
      image,
      labelled,
      undefined,
      { created_by: nop("LABEL (--label)") },
      new Date().toISOString(),
    );
  }
  opts.out(`Successfully built ${shortId(image.id)}`);
  const tags = (await store.readIndex()).tags;
  for (const tag of opts.tags) {
    const name = formatReference(parseReference(tag));
    // A cached rebuild usually names the same image: no index write (and no lock) then.
    if (tags[name] !== image.id) {
      await store.updateIndex((index) => {
        index.tags[name] = (image as ImageRecord).id;
      });
    }
    opts.out(`Successfully tagged ${tag.includes(":") ? tag : `${tag}:latest`}`);
  }
  return image;
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

interface StepResult {
  config: ImageConfig;
  layer?: NewLayer;
  history: HistoryEntry;
}

async function execute(
  store: Store,
  opts: BuildOptions,
  ins: Instruction,
  image: ImageRecord | undefined,
  state: BuildState,
  env: Record<string, string | undefined>,
  files: ContextFile[],
  from: { image?: ImageRecord } | undefined,
): Promise<StepResult> {
  const base = state.config;
  const args = state.args;
  const config: ImageConfig = JSON.parse(JSON.stringify(base));
  config.config ??= {};
  const c = config.config;
  const vars = { ...args, ...env };
  switch (ins.kind) {
    case "ENV": {
      const list = new Map((c.Env ?? []).map((e) => [e.split("=")[0] as string, e]));
      for (const [k, v] of ins.pairs)
        list.set(expand(k, vars), `${expand(k, vars)}=${expand(v, vars)}`);
      c.Env = [...list.values()];
      return { config, history: { created_by: nop(ins.raw) } };
    }
    case "LABEL":
      c.Labels = { ...(c.Labels ?? {}) };
      for (const [k, v] of ins.pairs) c.Labels[expand(k, vars)] = expand(v, vars);
      return { config, history: { created_by: nop(ins.raw) } };
    case "WORKDIR":
      c.WorkingDir = posix.resolve(c.WorkingDir || "/", expand(ins.value, vars));
      return { config, history: { created_by: nop(ins.raw) } };
    case "USER":
      c.User = expand(ins.value, vars);
      return { config, history: { created_by: nop(ins.raw) } };
    case "STOPSIGNAL":
      c.StopSignal = expand(ins.value, vars);
      return { config, history: { created_by: nop(ins.raw) } };
    case "EXPOSE":
      c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
      for (const p of ins.values) {
        const port = expand(p, vars);
        c.ExposedPorts[port.includes("/") ? port : `${port}/tcp`] = {};
      }
      return { config, history: { created_by: nop(ins.raw) } };
    case "VOLUME":
      c.Volumes = { ...(c.Volumes ?? {}) };
      for (const v of ins.values) c.Volumes[expand(v, vars)] = {};
      return { config, history: { created_by: nop(ins.raw) } };
    case "CMD":
    case "ENTRYPOINT": {
      const argv = ins.shell ? [...shellOf(c), ins.command.join(" ")] : ins.command;
      if (ins.kind === "CMD") c.Cmd = argv;
      else {
        c.Entrypoint = argv;
        // Docker: a new ENTRYPOINT resets a CMD inherited from the base image.
        if (
          base.config?.Entrypoint === undefined ||
          JSON.stringify(base.config?.Entrypoint) !== JSON.stringify(argv)
        ) {
          c.Cmd = null;
        }
      }
      return { config, history: { created_by: nop(`${ins.kind} ${JSON.stringify(argv)}`) } };
    }
    case "SHELL":
      (c as Record<string, unknown>).Shell = ins.command;
      return { config, history: { created_by: nop(ins.raw) } };
    case "ARG":
      return { config, history: { created_by: nop(ins.raw) } };
    case "HEALTHCHECK":
      (c as Record<string, unknown>).Healthcheck = ins.none
        ? { Test: ["NONE"] }
        : {
            Test: [ins.shell ? "CMD-SHELL" : "CMD", ...(ins.command ?? [])],
            ...healthcheckTimings(ins.options, ins.line),
          };
      return { config, history: { created_by: nop(ins.raw) } };
    case "COPY":
    case "ADD":
      return copyStep(store, ins, image, config, vars, files, opts.contextDir, from);
    case "RUN":
      return runStep(store, opts, ins, image, config, args);
    default:
      throw new MiniboxError(
        `line ${(ins as Instruction).line}: ${(ins as Instruction).kind} is not supported`,
      );
  }
}

/** HEALTHCHECK --interval=30s …: Docker stores durations in nanoseconds. */
function healthcheckTimings(options: Record<string, string>, line: number): Record<string, number> {
  const fields: Record<string, string> = {
    interval: "Interval",
    timeout: "Timeout",
    "start-period": "StartPeriod",
    "start-interval": "StartInterval",
  };
  const out: Record<string, number> = {};
  for (const [flag, value] of Object.entries(options)) {
    if (flag === "retries") out.Retries = Number(value);
    else if (fields[flag]) out[fields[flag]] = durationNs(value, line);
  }
  return out;
}

/** A Go duration ("1m30s", "500ms") in nanoseconds. */
function durationNs(text: string, line: number): number {
  const unit: Record<string, number> = {
    ns: 1,
    us: 1e3,
    µs: 1e3,
    ms: 1e6,
    s: 1e9,
    m: 60e9,
    h: 3600e9,
  };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (!parts.length || parts.map((p) => p[0]).join("") !== text) {
    throw new MiniboxError(
      `line ${line}: invalid duration ${JSON.stringify(text)}`,
      "use e.g. 30s or 1m30s",
    );
  }
  return parts.reduce((n, p) => n + Number(p[1]) * (unit[p[2] as string] as number), 0);
}

function shellOf(c: NonNullable<ImageConfig["config"]>): string[] {
  const shell = (c as Record<string, unknown>).Shell;
  return Array.isArray(shell) && shell.length ? (shell as string[]) : ["/bin/sh", "-c"];
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

async function runStep(
  store: Store,
  opts: BuildOptions,
  ins: Extract<Instruction, { kind: "RUN" }>,
  image: ImageRecord | undefined,
  config: ImageConfig,
  args: Record<string, string | undefined>,
): Promise<StepResult> {
  if (!image)
    throw new MiniboxError(`line ${ins.line}: RUN needs a base image (FROM scratch has no shell)`);
  const argv = ins.shell ? [...shellOf(config.config ?? {}), ins.command.join(" ")] : ins.command;
  // Build arguments are in the environment of RUN steps only (they are not kept in the image).
  const runConfig: ImageConfig = JSON.parse(JSON.stringify(config));
  runConfig.config ??= {};
  const rc = runConfig.config;
  const set = new Map((rc.Env ?? []).map((e) => [e.split("=")[0] as string, e]));
  for (const [k, v] of Object.entries(args))
    if (v !== undefined && !set.has(k)) set.set(k, `${k}=${v}`);
  rc.Env = [...set.values()];
  const result = await opts.runStep(image, argv, runConfig);
  opts.out(` ---> Running in ${result.containerId.slice(0, 12)}`);
  try {
    if (opts.cancelled?.()) throw new BuildInterrupted();
    if (result.code !== 0) {
      throw new MiniboxError(
        `The command '${argv.join(" ")}' returned a non-zero code: ${result.code}`,
      );
    }
    // The mount points of the per-container /etc files are not the step's work
    // (Docker leaves them out too): drop the empty placeholders run created.
    for (const f of ["etc/hostname", "etc/hosts", "etc/resolv.conf"]) {
      const path = join(result.upperDir, f);
      const st = await lstat(path).catch(() => undefined);
      if (st?.isFile() && st.size === 0) await rm(path, { force: true });
    }
    const blob = await writeLayer(result.upperDir, store.tmpPath("layer"), {
      sourceDateEpoch: layerEpoch(),
      idShift: result.idShift,
    });
    const layer = blob.empty
      ? undefined
      : { path: blob.path, digest: blob.digest, diffID: blob.diffID };
    if (blob.empty) await rm(blob.path, { force: true });
    return { config, layer, history: { created_by: argv.join(" ") } };
  } finally {
    opts.out(`Removing intermediate container ${result.containerId.slice(0, 12)}`);
    await result.remove();
  }
}

/** COPY/ADD: the matched files laid out in a staging directory, which becomes the layer. */
async function copyStep(
  store: Store,
  ins: Extract<Instruction, { kind: "COPY" | "ADD" }>,
  image: ImageRecord | undefined,
  config: ImageConfig,
  vars: Record<string, string | undefined>,
  files: ContextFile[],
  contextDir: string,
  from: { image?: ImageRecord } | undefined,
): Promise<StepResult> {
  const sources = ins.sources.map((s) => expand(s, vars));
  const source = from
    ? await imageSource(from.image ? imageLayerDirs(store, from.image) : [], sources)
    : contextSource(files, contextDir);
  const plan = planCopy(ins, source, vars, config.config?.WorkingDir || "/");
  const chown = ins.chown ? await chownOf(store, image, expand(ins.chown, vars)) : undefined;
  const staging = store.tmpPath("copy");
  try {
    await stageCopy(ins, source, plan, staging, chown);
    const blob = await writeLayer(staging, store.tmpPath("layer"), {
      sourceDateEpoch: layerEpoch(),
    });
    const layer = { path: blob.path, digest: blob.digest, diffID: blob.diffID };
    return { config, layer, history: { created_by: nop(copyHistoryText(ins, plan)) } };
  } finally {
    await removeStaging(staging);
  }
}

/** --chown=USER[:GROUP], names looked up in the image being built. */
async function chownOf(
  store: Store,
  image: ImageRecord | undefined,
  spec: string,
): Promise<{ uid: number; gid: number }> {
  if (/^\d+(:\d+)?$/.test(spec)) return resolveChown(spec, undefined, undefined);
  const layers = image ? imageLayerDirs(store, image) : [];
  return resolveChown(
    spec,
    await readImageFile(layers, "/etc/passwd"),
    await readImageFile(layers, "/etc/group"),
  );
}

/** SOURCE_DATE_EPOCH in seconds, for the layer's timestamps. */
function layerEpoch(): number | undefined {
  const ms = sourceDateEpoch();
  return ms === undefined ? undefined : Math.floor(ms / 1000);
}

/** The cache key: parent image, instruction text, and for COPY/ADD what is copied (content, mode). */
async function cacheKey(
  image: ImageRecord | undefined,
  ins: Instruction,
  env: Record<string, string | undefined>,
  files: ContextFile[],
  contextDir: string,
  from: { image?: ImageRecord } | undefined,
): Promise<string> {
  const hash = createHash("sha256");
  hash.update(`${image?.id ?? "scratch"}\n${ins.raw}\n${JSON.stringify(env)}\n`);
  // An image's ID is the digest of its config, which names its layers: it stands for its files.
  if (from) hash.update(`from ${from.image?.id ?? "scratch"}\n`);
  else if (ins.kind === "COPY" || ins.kind === "ADD") {
    rejectUrls(
      ins,
      ins.sources.map((s) => expand(s, env)),
    );
    for (const source of ins.sources) {
      for (const f of matchSources(files, expand(source, env))) {
        hash.update(`${f.path}\0${f.mode}\0${f.type}\0`);
        if (f.type === "file") hash.update(await readFile(join(contextDir, f.path)));
        if (f.linkTarget) hash.update(f.linkTarget);
      }
    }
  }
  return hash.digest("hex");
}

async function loadCache(store: Store): Promise<Record<string, string>> {
  try {
    return JSON.parse(await readFile(store.layout.buildCache, "utf8"));
  } catch {
    return {};
  }
}

async function saveCache(store: Store, cache: Record<string, string>): Promise<void> {
  const file = store.layout.buildCache;
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(3).toString("hex")}`;
  await writeFile(tmp, JSON.stringify(cache));
  await rename(tmp, file);
}

/** SOURCE_DATE_EPOCH (seconds) in ms, for reproducible builds. */
function sourceDateEpoch(): number | undefined {
  const v = process.env.SOURCE_DATE_EPOCH;
  return v && /^\d+$/.test(v) ? Number(v) * 1000 : undefined;
}
