/**
 * `commit CONTAINER [REPO[:TAG]]`: a new image made of the container's image
 * plus one layer — the container's overlay upper directory, written by the
 * same code as a build's RUN step (diff.ts) and stored by the same commit
 * (commit.ts) — with the container's configuration and `-c` changes.
 *
 * Docker takes the new image's config from the container's Config (Env,
 * Cmd, Entrypoint, WorkingDir, ExposedPorts, Labels), the rest from the
 * image. minibox keeps only the container's runtime spec, so that Config is
 * reconstructed here from it (see `containerConfig`).
 */
import { rm } from "node:fs/promises";
import { MiniboxError } from "../errors.js";
import { imageLayerDirs } from "../image/image-tree.js";
import { readConfig } from "../image/images.js";
import type { ImageConfig } from "../image/manifest.js";
import { formatReference, parseReference } from "../image/reference.js";
import type { ImageRecord, Store } from "../image/store.js";
import { findFreezer, isPaused, setFrozen } from "../runtime/cgroups/freezer.js";
import { openCgroup } from "../runtime/cgroups/index.js";
import { runtimeOnlyPaths } from "../runtime/changes.js";
import { containerWithImage } from "../runtime/export.js";
import type { ContainerView } from "../runtime/lifecycle.js";
import { containerPaths } from "../runtime/rootfs.js";
import type { Spec } from "../runtime/spec.js";
import { commitImage } from "./commit.js";
import { applyConfigStep, type ContainerConfig } from "./config-step.js";
import { writeLayer } from "./diff.js";
import type { Instruction } from "./dockerfile.js";
import { parseInstruction } from "./instructions.js";

export interface CommitOptions {
  author?: string;
  message?: string;
  /** `-c` Dockerfile instructions, each one line. */
  changes: string[];
  /** REPO[:TAG]; none makes a dangling image, as Docker. */
  reference?: string;
  /** Freeze a running container while its layer is written (Docker's default). */
  pause: boolean;
}

/**
 * The instructions `docker commit --change` accepts (moby's
 * validCommitCommands); ONBUILD is among them but minibox's builder has no
 * ONBUILD, so parseInstruction refuses it.
 */
const CHANGE_COMMANDS = new Set([
  "CMD",
  "ENTRYPOINT",
  "ENV",
  "EXPOSE",
  "HEALTHCHECK",
  "LABEL",
  "ONBUILD",
  "STOPSIGNAL",
  "USER",
  "VOLUME",
  "WORKDIR",
]);

/** Parses every `-c` first, so a bad one fails before anything is written. */
export function parseChanges(changes: string[]): Instruction[] {
  return changes.flatMap((text, i) => {
    const word = /^\s*(\S*)/.exec(text)?.[1] ?? "";
    if (!CHANGE_COMMANDS.has(word.toUpperCase())) {
      // Docker's words (the builder lowercases the instruction).
      throw new MiniboxError(
        `${word.toLowerCase() || '""'} is not a valid change command`,
        `use one of ${[...CHANGE_COMMANDS].filter((c) => c !== "ONBUILD").join(", ")}`,
      );
    }
    return parseInstruction(text.trim(), i + 1, "\\", (msg) => {
      throw new MiniboxError(`invalid change ${JSON.stringify(text)}: ${msg}`);
    });
  });
}

export async function commitContainer(
  store: Store,
  nameOrId: string,
  opts: CommitOptions,
): Promise<ImageRecord> {
  const changes = parseChanges(opts.changes);
  const name = opts.reference ? formatReference(parseReference(opts.reference)) : undefined;
  if (name?.includes("@")) {
    throw new MiniboxError(`refusing to create a tag with a digest reference: ${opts.reference}`);
  }
  const { container, spec, image } = await containerWithImage(store, nameOrId);
  const base = await readConfig(store, image);
  const config: ImageConfig = JSON.parse(JSON.stringify(base));
  config.config = containerConfig(container, spec, base.config ?? {});
  // Docker's created_by: the container's Cmd, before any -c change.
  const createdBy = (config.config.Cmd ?? []).join(" ");
  for (const ins of changes) applyConfigStep(ins, config.config, base, envVars(config.config));
  if (opts.author) config.author = opts.author;

  const upper = containerPaths(store.root, container.id).upper;
  const blob = await whilePaused(opts.pause ? container : undefined, () =>
    writeLayer(upper, store.tmpPath("layer"), {
      idShift: idShiftOf(spec),
      skip: runtimeOnlyPaths(upper, imageLayerDirs(store, image)),
    }),
  );
  if (blob.empty) await rm(blob.path, { force: true });
  const record = await commitImage(
    store,
    image,
    config,
    blob.empty ? undefined : { path: blob.path, digest: blob.digest, diffID: blob.diffID },
    { created_by: createdBy, comment: opts.message, author: opts.author },
    new Date().toISOString(),
  );
  if (name) {
    await store.updateIndex((index) => {
      index.tags[name] = record.id;
    });
  }
  return record;
}

/**
 * Docker's container Config, from the spec: what `run` made of the image's
 * config and its flags. Env loses what the runtime adds (HOSTNAME, TERM with
 * -t, HOME when the image has none), as Docker adds those at start.
 * Entrypoint/Cmd: the spec has one argv; when it starts with the image's
 * Entrypoint, that stays the Entrypoint and the rest is the Cmd.
 */
export function containerConfig(
  c: ContainerView,
  spec: Spec,
  image: ContainerConfig,
): ContainerConfig {
  const imageEnvKeys = new Set((image.Env ?? []).map(keyOf));
  const runtimeAdded = (e: string) =>
    !imageEnvKeys.has(keyOf(e)) &&
    (e === `HOSTNAME=${spec.hostname}` ||
      (spec.process.terminal && e === "TERM=xterm") ||
      keyOf(e) === "HOME");
  const args = spec.process.args;
  const entry = image.Entrypoint ?? [];
  const keepsEntrypoint = entry.length > 0 && entry.every((a, i) => args[i] === a);
  const userLabels = Object.entries(spec.annotations ?? {}).filter(
    ([k]) => !k.startsWith("minibox."),
  );
  const uid = spec.process.user.uid;
  const gid = spec.process.user.gid;
  return {
    ...image,
    Env: spec.process.env.filter((e) => !runtimeAdded(e)),
    Entrypoint: keepsEntrypoint ? entry : null,
    Cmd: keepsEntrypoint ? (args.length > entry.length ? args.slice(entry.length) : null) : args,
    WorkingDir: spec.process.cwd === "/" && !image.WorkingDir ? "" : spec.process.cwd,
    User: userOf(image.User ?? "", uid, gid),
    ...(c.exposedPorts?.length
      ? { ExposedPorts: Object.fromEntries(c.exposedPorts.map((p) => [p, {}])) }
      : {}),
    Labels:
      userLabels.length || image.Labels
        ? { ...(image.Labels ?? {}), ...Object.fromEntries(userLabels) }
        : image.Labels,
  };
}

/**
 * Docker pauses a running container during commit, so that the layer is one
 * moment's state rather than files caught half-written. minibox freezes it
 * when its cgroup has a freezer (cgroup v2's cgroup.freeze); `run` makes no
 * v1 freezer directory, so on cgroup v1 the layer is written while it runs.
 */
async function whilePaused<T>(c: ContainerView | undefined, write: () => Promise<T>): Promise<T> {
  const cgroup = c?.running ? openCgroup(c.id, { parent: c.cgroupParent }) : undefined;
  const freezer = cgroup ? findFreezer(cgroup.dirs) : undefined;
  if (!freezer || isPaused(freezer)) return write();
  await setFrozen(freezer, true);
  try {
    return await write();
  } finally {
    await setFrozen(freezer, false);
  }
}

/**
 * The spec holds numbers only. The image's USER stays when it can be what
 * the container ran as: a name (not resolved here), or the same numbers;
 * otherwise `-u` changed it, and the numbers are what Docker's Config would
 * show at best.
 */
function userOf(imageUser: string, uid: number, gid: number): string {
  const numeric = /^(\d+)(?::(\d+))?$/.exec(imageUser);
  if (imageUser === "") return uid === 0 && gid === 0 ? "" : `${uid}:${gid}`;
  if (!numeric) return imageUser;
  const sameUid = Number(numeric[1]) === uid;
  const sameGid = numeric[2] === undefined || Number(numeric[2]) === gid;
  return sameUid && sameGid ? imageUser : `${uid}:${gid}`;
}

/** Host uid/gid of the container's root (its user namespace), to be subtracted in the layer. */
function idShiftOf(spec: Spec): { uid: number; gid: number } | undefined {
  const uid = spec.linux.uidMappings?.find((m) => m.containerID === 0)?.hostID;
  const gid = spec.linux.gidMappings?.find((m) => m.containerID === 0)?.hostID;
  return uid !== undefined && gid !== undefined ? { uid, gid } : undefined;
}

function keyOf(entry: string): string {
  const eq = entry.indexOf("=");
  return eq < 0 ? entry : entry.slice(0, eq);
}

/** The config's Env as variables, for `$VAR` in -c changes (as the builder expands them). */
function envVars(c: ContainerConfig): Record<string, string> {
  return Object.fromEntries((c.Env ?? []).map((e) => [keyOf(e), e.slice(keyOf(e).length + 1)]));
}
