/**
 * The Dockerfile instructions that make a layer: RUN (a container from the
 * current image runs the command; its upper directory, what it changed,
 * becomes the layer) and COPY/ADD (the matched files, laid out at the
 * destination in a staging directory, become the layer).
 */
import { lstat, rm } from "node:fs/promises";
import { join } from "node:path";
import { MiniboxError } from "../errors.js";
import { imageLayerDirs, readImageFile } from "../image/image-tree.js";
import type { ImageConfig } from "../image/manifest.js";
import type { ImageRecord, Store } from "../image/store.js";
import { resolveChown } from "../runtime/user.js";
import { type BuildOptions, stopIfCancelled } from "./build-options.js";
import type { HistoryEntry, NewLayer } from "./commit.js";
import { nop, shellOf } from "./config-step.js";
import type { ContextFile } from "./context.js";
import {
  contextSource,
  copyHistoryText,
  imageSource,
  planCopy,
  removeStaging,
  stageCopy,
} from "./copy.js";
import { writeLayer } from "./diff.js";
import type { Instruction } from "./dockerfile.js";
import { expand } from "./shell-words.js";

/** What a step makes: the new config, its layer if any, its history entry. */
export interface StepResult {
  config: ImageConfig;
  layer?: NewLayer;
  history: HistoryEntry;
}

export async function runStep(
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
  const result = await opts.runStep(image, argv, withBuildArgs(config, args));
  opts.out(` ---> Running in ${result.containerId.slice(0, 12)}`);
  try {
    stopIfCancelled(opts);
    if (result.code !== 0) {
      throw new MiniboxError(
        `The command '${argv.join(" ")}' returned a non-zero code: ${result.code}`,
      );
    }
    await dropEtcPlaceholders(result.upperDir);
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

/** Build arguments are in the environment of RUN steps only (they are not kept in the image). */
function withBuildArgs(config: ImageConfig, args: Record<string, string | undefined>): ImageConfig {
  const runConfig: ImageConfig = JSON.parse(JSON.stringify(config));
  runConfig.config ??= {};
  const rc = runConfig.config;
  const set = new Map((rc.Env ?? []).map((e) => [e.split("=")[0] as string, e]));
  for (const [k, v] of Object.entries(args))
    if (v !== undefined && !set.has(k)) set.set(k, `${k}=${v}`);
  rc.Env = [...set.values()];
  return runConfig;
}

/**
 * The mount points of the per-container /etc files are not the step's work
 * (Docker leaves them out too): drop the empty placeholders run created.
 */
async function dropEtcPlaceholders(upperDir: string): Promise<void> {
  for (const f of ["etc/hostname", "etc/hosts", "etc/resolv.conf"]) {
    const path = join(upperDir, f);
    const st = await lstat(path).catch(() => undefined);
    if (st?.isFile() && st.size === 0) await rm(path, { force: true });
  }
}

/** COPY/ADD: the matched files laid out in a staging directory, which becomes the layer. */
export async function copyStep(
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

/** SOURCE_DATE_EPOCH (seconds) in ms, for reproducible builds. */
export function sourceDateEpoch(): number | undefined {
  const v = process.env.SOURCE_DATE_EPOCH;
  return v && /^\d+$/.test(v) ? Number(v) * 1000 : undefined;
}

/** SOURCE_DATE_EPOCH in seconds, for the layer's timestamps. */
function layerEpoch(): number | undefined {
  const ms = sourceDateEpoch();
  return ms === undefined ? undefined : Math.floor(ms / 1000);
}
