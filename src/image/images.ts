/**
 * Operations on images already in the store: find by name or ID, tag,
 * untag/remove (with the layers only they used), and the JSON shapes Docker
 * users know from `docker image inspect` and `docker history`.
 */
import { readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { MiniboxError } from "../errors.js";
import { recordImageEvent } from "../events/image-events.js";
import { containerPaths, rootLayout } from "../layout.js";
import { digestHex, shortId } from "./digest.js";
import { type ImageConfig, parseImageConfig } from "./manifest.js";
import {
  familiarString,
  formatReference,
  type ImageReference,
  looksLikeImageId,
  parseReference,
} from "./reference.js";
import type { ImageIndex, ImageRecord, Store } from "./store.js";

export interface ResolvedImage {
  record: ImageRecord;
  /** The canonical tag the user named, if they named one. */
  tag?: string;
}

/**
 * Find an image the way Docker does: by ID (full, "sha256:"-prefixed, or a
 * unique prefix of at least 4 hex digits... Docker allows any unique prefix),
 * by name:tag, or by name@digest.
 */
export async function findImage(
  store: Store,
  nameOrId: string,
): Promise<ResolvedImage | undefined> {
  const index = await store.readIndex();
  const idText = nameOrId.startsWith("sha256:") ? nameOrId.slice(7) : nameOrId;
  if (/^[a-f0-9]{4,64}$/.test(idText) && (looksLikeImageId(nameOrId) || !parseable(nameOrId))) {
    const matches = Object.keys(index.images).filter((id) => digestHex(id).startsWith(idText));
    if (matches.length > 1)
      throw new MiniboxError(`image ID prefix ${idText} is ambiguous`, "give more digits");
    if (matches[0]) return { record: index.images[matches[0]] as ImageRecord };
  }
  let ref: ImageReference;
  try {
    ref = parseReference(nameOrId);
  } catch (err) {
    if (/^[a-f0-9]{4,64}$/.test(idText)) return undefined;
    throw err;
  }
  if (ref.digest) {
    const wanted = `${formatReference({ ...ref, tag: undefined, digest: undefined }).replace(/:latest$/, "")}@${ref.digest}`;
    const record = Object.values(index.images).find(
      (r) => r.repoDigests.includes(wanted) || r.manifestDigest === ref.digest,
    );
    return record ? { record } : undefined;
  }
  const tag = formatReference(ref);
  const id = index.tags[tag];
  const record = id ? index.images[id] : undefined;
  return record ? { record, tag } : undefined;
}

function parseable(text: string): boolean {
  try {
    parseReference(text);
    return true;
  } catch {
    return false;
  }
}

export async function requireImage(store: Store, nameOrId: string): Promise<ResolvedImage> {
  const found = await findImage(store, nameOrId);
  if (!found) {
    throw new MiniboxError(
      `no such image: ${nameOrId}`,
      `pull it first with 'minibox pull ${nameOrId}'`,
    );
  }
  return found;
}

export async function readConfig(store: Store, record: ImageRecord): Promise<ImageConfig> {
  return parseImageConfig(await store.readBlob(record.id));
}

/** `tag SOURCE TARGET`: another name for the same image ID. */
export async function tagImage(store: Store, source: string, target: string): Promise<void> {
  const { record } = await requireImage(store, source);
  const ref = parseReference(target);
  if (ref.digest) throw new MiniboxError(`cannot tag with a digest: ${target}`, "use NAME[:TAG]");
  await store.updateIndex((index) => {
    if (!index.images[record.id])
      throw new MiniboxError(`image ${shortId(record.id)} was removed meanwhile`);
    index.tags[formatReference(ref)] = record.id;
  });
  await recordImageEvent(store, "tag", record.id, familiarString(ref));
}

/** Canonical tags of an image, in the familiar form Docker prints ("alpine:3.8"). */
export function familiarTags(tags: string[]): string[] {
  return tags.map((t) => familiarString(parseReference(t)));
}

/**
 * Which containers use which image: image ID → container IDs. Container
 * state lives in <root>/containers/<id>/state.json (written by `run`); an
 * image a container was made from cannot be removed without -f, as in Docker.
 */
export async function imageUsers(root: string): Promise<Map<string, string[]>> {
  const users = new Map<string, string[]>();
  for (const name of await readdir(rootLayout(root).containers).catch(() => [] as string[])) {
    try {
      const state = JSON.parse(await readFile(containerPaths(root, name).state, "utf8")) as {
        imageId?: string;
      };
      if (typeof state.imageId === "string") {
        users.set(state.imageId, [...(users.get(state.imageId) ?? []), name]);
      }
    } catch {
      // half-created or foreign entry: not a container that uses an image
    }
  }
  return users;
}

/**
 * `rmi`: untag, and when no tag is left, delete the image and every blob and
 * layer no other image needs. Returns Docker's lines ("Untagged: …", "Deleted: …").
 */
export async function removeImage(
  store: Store,
  nameOrId: string,
  force: boolean,
): Promise<string[]> {
  const { record, tag } = await requireImage(store, nameOrId);
  const busy = await imageUsers(store.root);
  const lines: string[] = [];
  const doomed = await store.updateIndex((index) =>
    removeFromIndex(index, { record, tag, force, busy }, lines),
  );
  // Docker's events name the image ID for each name removed, then for each image deleted
  // (journalled while the config, whose labels untag shows, is still there; delete shows none).
  for (const _ of lines.filter((l) => l.startsWith("Untagged: ")))
    await recordImageEvent(store, "untag", record.id, record.id);
  for (const id of doomed.images) await recordImageEvent(store, "delete", id, id, "");
  // The index no longer points at these, so a crash from here on leaves only unreferenced files.
  await deleteLayers(store, doomed.layers);
  for (const blob of new Set(doomed.blobs)) await rm(store.blobPath(blob), { force: true });
  return lines;
}

/** What `rmi` was asked, and which containers use which image. */
interface Removal {
  record: ImageRecord;
  /** The tag it was named by (undefined when named by ID). */
  tag?: string;
  force: boolean;
  busy: Map<string, string[]>;
}

/** Layers (chain IDs) and blobs (digests) that no image in the index needs any more. */
interface Doomed {
  layers: string[];
  blobs: string[];
  /** The images deleted from the index (for their `delete` events). */
  images: string[];
}

/** Docker's rmi, on the index: untag, then drop the image if nothing keeps it. */
function removeFromIndex(index: ImageIndex, removal: Removal, lines: string[]): Doomed {
  const { record, tag, force, busy } = removal;
  const nothing: Doomed = { layers: [], blobs: [], images: [] };
  const tags = Object.keys(index.tags).filter((t) => index.tags[t] === record.id);
  if (tag && tags.length > 1) {
    // Removing one of several names only untags.
    delete index.tags[tag];
    lines.push(`Untagged: ${familiarTags([tag])[0]}`);
    return nothing;
  }
  const users = busy.get(record.id) ?? [];
  if (!force) refuseIfReferenced(record, tag, tags, users);
  for (const t of tags) {
    delete index.tags[t];
    lines.push(`Untagged: ${familiarTags([t])[0]}`);
  }
  for (const repoDigest of record.repoDigests)
    lines.push(`Untagged: ${familiarDigest(repoDigest)}`);
  if (users.length > 0) return nothing; // forced while in use: Docker keeps the image, untagged
  if (keptAsParent(index, record, tags)) return nothing;
  return dropImage(index, record, busy, lines);
}

function refuseIfReferenced(
  record: ImageRecord,
  tag: string | undefined,
  tags: string[],
  users: string[],
): void {
  if (!tag && tags.length > 1) {
    throw new MiniboxError(
      `conflict: unable to delete ${shortId(record.id)} (must be forced) - image is referenced in multiple repositories`,
      "remove it by name, or use -f",
    );
  }
  if (users.length > 0) {
    throw new MiniboxError(
      `conflict: unable to remove image ${familiarTags(tag ? [tag] : tags)[0] ?? shortId(record.id)} - image is being used by container ${users[0]?.slice(0, 12)}`,
      "remove the container first, or use -f",
    );
  }
}

/** A parent of other images (a build's base) stays while they need it, untagged. */
function keptAsParent(index: ImageIndex, record: ImageRecord, tags: string[]): boolean {
  if (!Object.values(index.images).some((r) => r.parent === record.id)) return false;
  if (tags.length > 0) return true;
  throw new MiniboxError(
    `conflict: unable to delete ${shortId(record.id)} (cannot be forced) - image has dependent child images`,
    "remove the images built from it first",
  );
}

/** Delete the image (and its orphaned parents) from the index; what no remaining image needs. */
function dropImage(
  index: ImageIndex,
  record: ImageRecord,
  busy: Map<string, string[]>,
  lines: string[],
): Doomed {
  // Docker deletes a build's intermediate images with their last child.
  const gone = [record, ...orphanedParents(index, record, busy)];
  const doomed: Doomed = { layers: [], blobs: [], images: gone.map((g) => g.id) };
  for (const g of gone) delete index.images[g.id];
  const remaining = Object.values(index.images);
  const usedLayers = new Set(remaining.flatMap((r) => r.layers.map((l) => l.chainId)));
  const usedBlobs = new Set(
    remaining.flatMap((r) => [
      r.id,
      r.manifestDigest,
      ...r.repoDigests.map(repoDigestOf),
      ...r.layers.map((l) => l.digest),
    ]),
  );
  // A parent's layers are a prefix of its child's: the removed image's layers cover them all.
  for (const layer of record.layers) {
    if (!usedLayers.has(layer.chainId)) doomed.layers.push(layer.chainId);
    if (!usedBlobs.has(layer.digest)) doomed.blobs.push(layer.digest);
  }
  for (const g of gone) {
    for (const blob of [g.id, g.manifestDigest, ...g.repoDigests.map(repoDigestOf)]) {
      if (!usedBlobs.has(blob)) doomed.blobs.push(blob);
    }
    lines.push(`Deleted: ${g.id}`);
  }
  for (const chain of doomed.layers) lines.push(`Deleted: ${chain}`);
  return doomed;
}

/** Each layer and its owner-shifted copies (the no-idmap fallback of `run`). */
async function deleteLayers(store: Store, chains: string[]): Promise<void> {
  const shiftedRoot = store.layout.layersShifted;
  const shiftedRanges = await readdir(shiftedRoot).catch(() => [] as string[]);
  for (const chain of chains) {
    const dirs = [
      store.layerDir(chain),
      ...shiftedRanges.map((r) => join(shiftedRoot, r, digestHex(chain))),
    ];
    for (const dir of dirs) {
      const trash = store.tmpPath("rm");
      await rename(dir, trash).catch(() => undefined);
      await rm(trash, { recursive: true, force: true });
    }
  }
}

/**
 * `image prune`: remove dangling images (untagged, no child image), or with
 * `all` every image no container uses, each with its untagged parents, as
 * `rmi` would. Returns Docker's lines and the bytes the layers held.
 */
export async function pruneImages(
  store: Store,
  all: boolean,
): Promise<{ lines: string[]; reclaimed: number }> {
  const before = await store.readIndex();
  const layerSize = new Map(
    Object.values(before.images).flatMap((r) => r.layers.map((l) => [l.chainId, l.size] as const)),
  );
  const busy = await imageUsers(store.root);
  const lines: string[] = [];
  let reclaimed = 0;
  const tried = new Set<string>();
  // Children first, so that by the time a parent comes up it may be dangling too.
  for (;;) {
    const index = await store.readIndex();
    const tagged = new Set(Object.values(index.tags));
    const parents = new Set(Object.values(index.images).map((r) => r.parent));
    const doomed = Object.values(index.images).find(
      (r) =>
        !tried.has(r.id) && !busy.has(r.id) && !parents.has(r.id) && (all || !tagged.has(r.id)),
    );
    if (!doomed) break;
    tried.add(doomed.id); // each image once, whatever removeImage decides
    for (const line of await removeImage(store, doomed.id, true)) {
      const [verb, what = ""] = line.split(": ");
      lines.push(`${verb?.toLowerCase()}: ${what}`);
      if (verb === "Deleted") reclaimed += layerSize.get(what) ?? 0;
    }
  }
  return { lines, reclaimed };
}

/**
 * The untagged ancestors of a removed image that nothing else needs (no
 * other child, no tag, no container), nearest first. Their layers are a
 * prefix of the removed image's, so layers and layer blobs are already
 * handled; only their config and manifest blobs remain to go.
 */
function orphanedParents(
  index: ImageIndex,
  removed: ImageRecord,
  busy: Map<string, string[]>,
): ImageRecord[] {
  const out: ImageRecord[] = [];
  const tagged = new Set(Object.values(index.tags));
  let id = removed.parent;
  while (id) {
    const parent = index.images[id];
    if (!parent || tagged.has(id) || busy.has(id)) break;
    const parentId = id;
    const children = Object.values(index.images).filter((r) => r.parent === parentId);
    if (children.some((c) => c.id !== removed.id && !out.includes(c))) break;
    out.push(parent);
    id = parent.parent;
  }
  return out;
}

function repoDigestOf(repoDigest: string): string {
  return repoDigest.slice(repoDigest.lastIndexOf("@") + 1);
}

function familiarDigest(repoDigest: string): string {
  const at = repoDigest.lastIndexOf("@");
  const repo = familiarString(parseReference(repoDigest.slice(0, at))).replace(/:latest$/, "");
  return `${repo}@${repoDigest.slice(at + 1)}`;
}

/** `image inspect`: the JSON shape of `docker image inspect`. */
export async function inspectImage(
  store: Store,
  nameOrId: string,
): Promise<Record<string, unknown>> {
  const { record } = await requireImage(store, nameOrId);
  const config = await readConfig(store, record);
  const index = await store.readIndex();
  const tags = Object.keys(index.tags).filter((t) => index.tags[t] === record.id);
  const diffDirs = record.layers.map((l) => store.layerDiffDir(l.chainId)).reverse();
  return {
    Id: record.id,
    RepoTags: familiarTags(tags),
    RepoDigests: record.repoDigests.map(familiarDigest),
    Parent: "",
    Comment: config.history?.[config.history.length - 1]?.comment ?? "",
    Created: config.created ?? "",
    DockerVersion: "",
    Author: config.author ?? "",
    Config: dockerConfig(config),
    Architecture: config.architecture,
    Variant: config.variant,
    Os: config.os,
    Size: record.size,
    GraphDriver: {
      Name: "overlay",
      Data: {
        LowerDir: diffDirs.slice(1).join(":") || undefined,
        UpperDir: diffDirs[0],
      },
    },
    RootFS: { Type: "layers", Layers: config.rootfs.diff_ids },
    Metadata: { LastTagTime: record.addedAt },
  };
}

/** Docker always shows every Config field; fill the ones an image leaves out. */
function dockerConfig(config: ImageConfig): Record<string, unknown> {
  const c = config.config ?? {};
  return {
    Hostname: "",
    Domainname: "",
    User: c.User ?? "",
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    ExposedPorts: c.ExposedPorts,
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: c.Env ?? null,
    Cmd: c.Cmd ?? null,
    Image: "",
    Volumes: c.Volumes ?? null,
    WorkingDir: c.WorkingDir ?? "",
    Entrypoint: c.Entrypoint ?? null,
    OnBuild: null,
    Labels: c.Labels ?? null,
    StopSignal: c.StopSignal,
    // Set by HEALTHCHECK and SHELL in a Dockerfile; Docker shows them only when set.
    Healthcheck: (c as Record<string, unknown>).Healthcheck,
    Shell: (c as Record<string, unknown>).Shell,
  };
}

export interface HistoryRow {
  id: string;
  created: string;
  createdBy: string;
  size: number;
  comment: string;
}

/**
 * `history`: one row per history entry, newest first. Entries that made a
 * layer take the sizes of the layers in order; metadata-only entries
 * (empty_layer) are 0 B. Rows made by local builds name their image; the
 * rows of a pulled image below its top are "<missing>", as in Docker.
 */
export async function imageHistory(store: Store, nameOrId: string): Promise<HistoryRow[]> {
  const { record } = await requireImage(store, nameOrId);
  const config = await readConfig(store, record);
  const history: NonNullable<ImageConfig["history"]> = config.history?.length
    ? config.history
    : record.layers.map(() => ({ created: config.created, created_by: "", empty_layer: false }));
  let layer = 0;
  const rows = history.map((h) => {
    const size = h.empty_layer ? 0 : (record.layers[layer++]?.size ?? 0);
    return {
      id: "<missing>",
      created: h.created ?? "",
      createdBy: h.created_by ?? "",
      size,
      comment: h.comment ?? "",
    };
  });
  rows.reverse();
  // Each build step made one history entry and one image: walking the parent
  // chain names the rows the local builds made (the rest stay <missing>).
  const images = (await store.readIndex()).images;
  let id: string | undefined = record.id;
  for (const row of rows) {
    if (!id) break;
    row.id = id;
    id = images[id]?.parent;
  }
  return rows;
}
