/**
 * The volume store: managed directories that outlive containers, laid out
 * as Docker's "local" driver lays them out:
 *
 *   <root>/volumes/<name>/_data         what the container sees
 *   <root>/volumes/<name>/volume.json   name, creation time, labels
 *
 * A volume is created whole or not at all (built under a temporary name and
 * renamed into place), and each is serialised by a lock, so `run` creating
 * it, filling it from the image and `volume rm` checking it never interleave.
 * <root>/volumes is 0700: a container's root may leave setuid files in a
 * volume, and host users must not be able to reach them.
 *
 * Which containers use a volume is read from their state.json (`mounts`),
 * written before the volume is prepared, so a volume in use by any
 * container, running or not, is refused by `volume rm` — as in Docker.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { lchown, lstat, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { MiniboxError } from "../errors.js";
import { recordEvent } from "../events/journal.js";
import { type LayerDir, listImageTree } from "../image/image-tree.js";
import { rootLayout } from "../layout.js";
import { withLock } from "../sys/lock.js";
import { processAlive } from "../sys/process.js";
import { copyTree } from "./copy-tree.js";
import { volumeNameProblem } from "./mount-spec.js";
import { listContainers } from "./state.js";

/** Docker ≥ 23 marks anonymous volumes with this label; `volume prune` removes only those by default. */
export const ANONYMOUS_LABEL = "com.docker.volume.anonymous";

export interface Volume {
  Name: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Options: Record<string, string>;
}

/** A container's mount, as `inspect` shows it (Docker's MountPoint). */
export interface MountPoint {
  Type: "bind" | "volume" | "tmpfs";
  Name?: string;
  Source: string;
  Destination: string;
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
}

export function volumesDir(root: string): string {
  return rootLayout(root).volumes;
}

export function volumeData(root: string, name: string): string {
  return join(volumesDir(root), name, "_data");
}

/** A new anonymous volume's name: 64 hex digits, like Docker's. */
export function anonymousName(): string {
  return randomBytes(32).toString("hex");
}

function lockOf(root: string, name: string): string {
  return rootLayout(root).lock(`volume-${name}`);
}

async function locked<T>(root: string, name: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(rootLayout(root).locks, { recursive: true, mode: 0o700 });
  return withLock(lockOf(root, name), fn);
}

export async function readVolume(root: string, name: string): Promise<Volume | undefined> {
  try {
    return JSON.parse(await readFile(join(volumesDir(root), name, "volume.json"), "utf8"));
  } catch {
    return undefined;
  }
}

export async function getVolume(root: string, name: string): Promise<Volume> {
  const volume = validName(name) ? await readVolume(root, name) : undefined;
  if (!volume) throw new MiniboxError(`get ${name}: no such volume`);
  return volume;
}

function validName(name: string): boolean {
  return volumeNameProblem(name) === undefined;
}

export async function listVolumes(root: string): Promise<Volume[]> {
  let names: string[];
  try {
    names = await readdir(volumesDir(root));
  } catch {
    return [];
  }
  const out: Volume[] = [];
  for (const name of names.sort()) {
    if (name.startsWith(".")) continue; // being created
    const v = await readVolume(root, name);
    if (v) out.push(v);
  }
  return out;
}

/**
 * Create the volume unless it exists (Docker's `volume create` of an
 * existing name is not an error either). `created` says which happened.
 */
export async function createVolume(
  root: string,
  name: string,
  labels: Record<string, string> = {},
  owner?: { uid: number; gid: number },
): Promise<{ volume: Volume; created: boolean }> {
  const problem = volumeNameProblem(name);
  if (problem) throw new MiniboxError(problem);
  return locked(root, name, async () => {
    const existing = await readVolume(root, name);
    if (existing) return { volume: existing, created: false };
    const dir = volumesDir(root);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const staging = join(dir, `.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
    const volume: Volume = {
      Name: name,
      CreatedAt: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      Labels: labels,
      Options: {},
    };
    try {
      await mkdir(join(staging, "_data"), { recursive: true, mode: 0o755 });
      if (owner) await lchown(join(staging, "_data"), owner.uid, owner.gid);
      await writeFile(join(staging, "volume.json"), `${JSON.stringify(volume, null, 2)}\n`);
      await rename(staging, join(dir, name));
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      throw err;
    }
    await recordEvent(root, "volume", "create", { ID: name, Attributes: { driver: "local" } });
    return { volume, created: true };
  });
}

/** IDs of the containers (any state) that mount the volume. */
export async function volumeUsers(root: string, name: string): Promise<string[]> {
  return (await listContainers(root))
    .filter((c) => c.mounts?.some((m) => m.Type === "volume" && m.Name === name))
    .map((c) => c.id);
}

/**
 * `volume rm`: refused while a container uses it. `missingOk` (rm -f)
 * turns "no such volume" into nothing.
 */
export async function removeVolume(
  root: string,
  name: string,
  missingOk = false,
): Promise<boolean> {
  if (!validName(name)) {
    if (missingOk) return false;
    throw new MiniboxError(`get ${name}: no such volume`);
  }
  return locked(root, name, async () => {
    if (!(await readVolume(root, name))) {
      if (missingOk) return false;
      throw new MiniboxError(`get ${name}: no such volume`);
    }
    const users = await volumeUsers(root, name);
    if (users.length > 0) {
      throw new MiniboxError(
        `remove ${name}: volume is in use - [${users.join(", ")}]`,
        "remove the container(s) first",
      );
    }
    await dropVolumeDir(root, name);
    return true;
  });
}

/** Rename away, then delete: a killed rm never leaves a half-deleted volume under its name. */
async function dropVolumeDir(root: string, name: string): Promise<void> {
  const doomed = join(volumesDir(root), `.rm-${process.pid}-${randomBytes(4).toString("hex")}`);
  await rename(join(volumesDir(root), name), doomed);
  await rm(doomed, { recursive: true, force: true });
  // Every removal comes here (rm, prune, --rm's anonymous volumes): one `destroy` each.
  await recordEvent(root, "volume", "destroy", { ID: name, Attributes: { driver: "local" } });
}

/**
 * `volume prune`: unused anonymous volumes (`all`: unused named ones too).
 * Returns the names removed and the bytes their data took.
 */
export async function pruneVolumes(
  root: string,
  all: boolean,
): Promise<{ names: string[]; bytes: number }> {
  const names: string[] = [];
  let bytes = 0;
  await sweepLeftovers(root);
  for (const v of await listVolumes(root)) {
    if (!all && !(ANONYMOUS_LABEL in (v.Labels ?? {}))) continue;
    await locked(root, v.Name, async () => {
      if ((await volumeUsers(root, v.Name)).length > 0) return;
      bytes += await diskUsage(volumeData(root, v.Name));
      await dropVolumeDir(root, v.Name);
      names.push(v.Name);
    });
  }
  return { names, bytes };
}

/**
 * The anonymous volumes of a container that is being removed with --rm or
 * `rm -v`: gone, unless another container mounts them too. Named volumes stay.
 */
export async function removeAnonymousVolumes(
  root: string,
  mounts: MountPoint[] | undefined,
  exceptContainer?: string,
): Promise<void> {
  for (const m of mounts ?? []) {
    if (m.Type !== "volume" || !m.Name) continue;
    const name = m.Name;
    await locked(root, name, async () => {
      const v = await readVolume(root, name);
      if (!v || !(ANONYMOUS_LABEL in (v.Labels ?? {}))) return;
      const users = (await volumeUsers(root, name)).filter((id) => id !== exceptContainer);
      if (users.length === 0) await dropVolumeDir(root, name);
    });
  }
}

/** Remove volumes a failed `run` created, so bad input leaves nothing behind. */
export async function discardVolumes(root: string, names: string[]): Promise<void> {
  for (const name of names) {
    await locked(root, name, async () => {
      if (existsSync(join(volumesDir(root), name))) await dropVolumeDir(root, name);
    });
  }
}

/** `.tmp-PID-…` and `.rm-PID-…` left by a minibox killed while creating or removing a volume. */
async function sweepLeftovers(root: string): Promise<void> {
  const entries = await readdir(volumesDir(root)).catch(() => [] as string[]);
  for (const name of entries) {
    const pid = /^\.(?:tmp|rm)-(\d+)-/.exec(name)?.[1];
    if (pid && !processAlive(Number(pid))) {
      await rm(join(volumesDir(root), name), { recursive: true, force: true });
    }
  }
}

/** Apparent bytes of a file or tree (symlinks not followed), as Docker sums a volume; 0 when absent. */
export async function diskUsage(path: string): Promise<number> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return 0;
  let total = st.isDirectory() ? 0 : st.size;
  if (st.isDirectory()) {
    for (const name of await readdir(path)) total += await diskUsage(join(path, name));
  }
  return total;
}

/**
 * Docker's copy-up: a volume that is still empty when first mounted gets
 * what the image has at the mount point — owners, modes, symlinks, device
 * nodes — so `-v data:/etc/nginx` starts with the image's configuration.
 * Read from the layer directories with overlay's rules (no mount needed).
 * `shift` adds the container's id offset (the fallback without idmapped
 * mounts, where the volume is bound as is).
 */
export async function copyUpIfEmpty(
  root: string,
  name: string,
  layers: LayerDir[],
  target: string,
  shift: { uid: number; gid: number } = { uid: 0, gid: 0 },
): Promise<boolean> {
  return locked(root, name, async () => {
    if ((await readdir(volumeData(root, name))).length > 0) return false;
    const entries = await listImageTree(layers, target);
    const start = target.replace(/^\/+/, "");
    const top = entries.find((e) => e.path === start);
    if (top?.type !== "dir") return false;
    const sources = entries.map((e) => ({
      rel: e.path === start ? "" : e.path.slice(start === "" ? 0 : start.length + 1),
      source: e.source,
      stat: e.stat,
    }));
    await copyTree(sources, volumeData(root, name), { shift, intoExisting: true });
    return true;
  });
}
