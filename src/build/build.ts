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
import {
  chmod,
  copyFile,
  lchown,
  lstat,
  mkdir,
  readFile,
  readlink,
  rename,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { dirname, join, posix } from "node:path";
import { MiniboxError } from "../errors.js";
import { shortId } from "../image/digest.js";
import { findImage, readConfig } from "../image/images.js";
import type { ImageConfig, Platform } from "../image/manifest.js";
import { formatReference, parseReference } from "../image/reference.js";
import type { ImageRecord, Store } from "../image/store.js";
import { commitImage, type HistoryEntry, type NewLayer } from "./commit.js";
import {
  type ContextFile,
  matchSources,
  readContext,
  resolveSources,
  sendingContextMessage,
} from "./context.js";
import { writeLayer } from "./diff.js";
import { expand, type Instruction, parseDockerfile } from "./dockerfile.js";

export interface BuildOptions {
  contextDir: string;
  dockerfile: string;
  tags: string[];
  buildArgs: Record<string, string>;
  noCache: boolean;
  labels: Record<string, string>;
  quiet: boolean;
  platform: Platform;
  /** Runs one RUN step in a container; returns its exit code and the container's upper dir + owner shift. */
  runStep: (image: ImageRecord, argv: string[], config: ImageConfig) => Promise<RunStepResult>;
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
  const instructions = parseDockerfile(text, posix.basename(opts.dockerfile));
  const context = await readContext(opts.contextDir, opts.dockerfile);
  const cache = await loadCache(store);
  if (!opts.quiet) opts.out(sendingContextMessage(context.files));
  let image: ImageRecord | undefined;
  let config: ImageConfig = EMPTY_CONFIG;
  const args: Record<string, string | undefined> = {};
  const total = instructions.length;
  let cacheValid = !opts.noCache;
  for (const [i, ins] of instructions.entries()) {
    opts.out(`Step ${i + 1}/${total} : ${ins.raw}`);
    const env = envOf(config, args);
    if (ins.kind === "FROM") {
      const name = expand(ins.image, args);
      if (name === "scratch") {
        image = undefined;
        config = {
          ...EMPTY_CONFIG,
          architecture: opts.platform.architecture,
          os: opts.platform.os,
        };
        opts.out(" ---> scratch");
        continue;
      }
      image = (await findImage(store, name))?.record ?? (await opts.pull(name));
      config = await readConfig(store, image);
      opts.out(` ---> ${shortId(image.id)}`);
      continue;
    }
    if (ins.kind === "ARG") {
      args[ins.name] =
        opts.buildArgs[ins.name] ??
        (ins.defaultValue !== undefined ? expand(ins.defaultValue, args) : undefined);
    }
    const key = await cacheKey(image, ins, env, context.files, opts.contextDir);
    const cached = cacheValid ? cache[key] : undefined;
    const hit = cached ? (await store.readIndex()).images[cached] : undefined;
    if (hit) {
      image = hit;
      config = await readConfig(store, hit);
      opts.out(" ---> Using cache");
      opts.out(` ---> ${shortId(hit.id)}`);
      continue;
    }
    cacheValid = false; // a miss: every later step runs too
    const created = new Date(sourceDateEpoch() ?? Date.now()).toISOString();
    const step = await execute(store, opts, ins, image, config, env, args, context.files);
    image = await commitImage(store, image, step.config, step.layer, step.history, created);
    config = await readConfig(store, image);
    cache[key] = image.id;
    await saveCache(store, cache);
    opts.out(` ---> ${shortId(image.id)}`);
  }
  if (!image) throw new MiniboxError("the Dockerfile built nothing but scratch");
  if (Object.keys(opts.labels).length) {
    const labelled: ImageConfig = JSON.parse(JSON.stringify(config));
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
  for (const tag of opts.tags) {
    const ref = parseReference(tag);
    await store.updateIndex((index) => {
      index.tags[formatReference(ref)] = (image as ImageRecord).id;
    });
    opts.out(`Successfully tagged ${tag.includes(":") ? tag : `${tag}:latest`}`);
  }
  return image;
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
  base: ImageConfig,
  env: Record<string, string | undefined>,
  args: Record<string, string | undefined>,
  files: ContextFile[],
): Promise<StepResult> {
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
        : { Test: [ins.shell ? "CMD-SHELL" : "CMD", ...(ins.command ?? [])] };
      return { config, history: { created_by: nop(ins.raw) } };
    case "COPY":
    case "ADD":
      return copyStep(store, ins, config, vars, files, opts.contextDir);
    case "RUN":
      return runStep(store, opts, ins, image, config, args);
    default:
      throw new MiniboxError(
        `line ${(ins as Instruction).line}: ${(ins as Instruction).kind} is not supported`,
      );
  }
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
      sourceDateEpoch:
        sourceDateEpoch() !== undefined
          ? Math.floor((sourceDateEpoch() as number) / 1000)
          : undefined,
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
  config: ImageConfig,
  vars: Record<string, string | undefined>,
  files: ContextFile[],
  contextDir: string,
): Promise<StepResult> {
  if (ins.from) throw new MiniboxError(`line ${ins.line}: COPY --from is not supported yet`);
  const staging = store.tmpPath("copy");
  const workdir = config.config?.WorkingDir || "/";
  const dest = posix.resolve(workdir, expand(ins.dest, vars));
  const [uid, gid] = (ins.chown ?? "0:0").split(":").map((x) => Number(x));
  if (uid === undefined || Number.isNaN(uid)) {
    throw new MiniboxError(`line ${ins.line}: --chown takes numeric uid[:gid] for now`);
  }
  const sources = ins.sources.map((s) => expand(s, vars));
  const matched = sources.flatMap((s) => resolveSources(files, s));
  // Docker: with several sources, or a destination ending in "/", files go into the directory.
  const rawDest = expand(ins.dest, vars);
  const intoDir =
    rawDest === "." ||
    rawDest.endsWith("/") ||
    rawDest.endsWith("/.") ||
    matched.length > 1 ||
    sources.length > 1 ||
    matched.some((m) => m.file.type === "dir");
  try {
    await mkdir(staging, { recursive: true, mode: 0o755 });
    for (const { file, rel } of matched) {
      const target = join(staging, intoDir ? posix.join(dest, rel) : dest);
      await mkdir(dirname(target), { recursive: true, mode: 0o755 });
      const from = join(contextDir, file.path);
      if (file.type === "dir") await mkdir(target, { recursive: true, mode: file.mode & 0o7777 });
      else if (file.type === "symlink") await symlink(await readlink(from), target);
      else await copyFile(from, target);
      if (file.type !== "symlink")
        await chmod(target, ins.chmod ? Number.parseInt(ins.chmod, 8) : file.mode & 0o7777);
      await lchown(target, uid, gid ?? uid);
    }
    const blob = await writeLayer(staging, store.tmpPath("layer"), {
      sourceDateEpoch:
        sourceDateEpoch() !== undefined
          ? Math.floor((sourceDateEpoch() as number) / 1000)
          : undefined,
    });
    const layer = { path: blob.path, digest: blob.digest, diffID: blob.diffID };
    const sum = checksumOfFiles(matched.map((m) => m.file));
    const what = matched.length === 1 ? `file:${sum}` : `multi:${sum}`;
    return { config, layer, history: { created_by: nop(`${ins.kind} ${what} in ${dest}`) } };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

function checksumOfFiles(files: ContextFile[]): string {
  return createHash("sha256")
    .update(JSON.stringify(files.map((f) => [f.path, f.size, f.mode])))
    .digest("hex")
    .slice(0, 16);
}

/** The cache key: parent image, instruction text, and for COPY/ADD what is copied (content, mode). */
async function cacheKey(
  image: ImageRecord | undefined,
  ins: Instruction,
  env: Record<string, string | undefined>,
  files: ContextFile[],
  contextDir: string,
): Promise<string> {
  const hash = createHash("sha256");
  hash.update(`${image?.id ?? "scratch"}\n${ins.raw}\n${JSON.stringify(env)}\n`);
  if (ins.kind === "COPY" || ins.kind === "ADD") {
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
    return JSON.parse(await readFile(join(store.root, "build-cache.json"), "utf8"));
  } catch {
    return {};
  }
}

async function saveCache(store: Store, cache: Record<string, string>): Promise<void> {
  const tmp = join(
    store.root,
    `build-cache.json.tmp-${process.pid}-${randomBytes(3).toString("hex")}`,
  );
  await writeFile(tmp, JSON.stringify(cache));
  await rename(tmp, join(store.root, "build-cache.json"));
}

/** SOURCE_DATE_EPOCH (seconds) in ms, for reproducible builds. */
function sourceDateEpoch(): number | undefined {
  const v = process.env.SOURCE_DATE_EPOCH;
  return v && /^\d+$/.test(v) ? Number(v) * 1000 : undefined;
}
