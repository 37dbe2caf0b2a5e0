/**
 * `system df`: what the store's images, containers, volumes and build cache
 * take on disk, and how much of it `system prune -a --volumes` (then
 * `volume prune -a` for named volumes, as Docker's df counts them) frees.
 *
 * Sizes are apparent bytes, as Docker's: an image's layers by their unpacked
 * size (a layer shared by several images counted once in the total), a
 * container's writable layer (its overlay upper directory), a volume's _data.
 *
 * "Reclaimable" is what a prune would free now: `system prune` removes the
 * stopped containers first, so an image or volume only a stopped container
 * uses is reclaimable; only running containers keep theirs.
 */
import { readFile, stat } from "node:fs/promises";
import type { ImageRecord, Store } from "../image/store.js";
import { containerPaths } from "../layout.js";
import { type ContainerView, listViews, sweepContainers } from "./lifecycle.js";
import { diskUsage, listVolumes, type Volume, volumeData } from "./volumes.js";

export interface Totals {
  total: number;
  active: number;
  size: number;
  reclaimable: number;
}

export interface ImageUsage {
  record: ImageRecord;
  tags: string[];
  /** Containers (any state) made from it. */
  containers: number;
  /** Bytes of its layers that another listed image holds too. */
  sharedSize: number;
}

export interface ContainerUsage {
  view: ContainerView;
  /** Its writable layer: the overlay upper directory. */
  size: number;
}

export interface VolumeUsage {
  volume: Volume;
  /** Containers (any state) that mount it. */
  links: number;
  size: number;
}

/** One build-cache entry: a build step's key and the image it made. */
export interface CacheUsage {
  key: string;
  imageId: string;
  createdAt: string;
}

export interface DiskUsageReport {
  images: Totals & { items: ImageUsage[] };
  containers: Totals & { items: ContainerUsage[] };
  volumes: Totals & { items: VolumeUsage[] };
  buildCache: Totals & { items: CacheUsage[] };
}

export async function diskUsageReport(store: Store): Promise<DiskUsageReport> {
  await sweepContainers(store.root);
  const views = await listViews(store.root);
  const images = await imageUsage(store, views);
  const containers = await containerUsage(store.root, views);
  const volumes = await volumeUsage(store.root, views);
  const buildCache = await buildCacheUsage(store);
  return { images, containers, volumes, buildCache };
}

/**
 * The images `images` lists (tagged, or untagged without a child: a build's
 * intermediate images are part of their final image). Their layers, each
 * counted once, make the total; what running containers' images (and the
 * parents those need) hold is not reclaimable.
 */
async function imageUsage(
  store: Store,
  views: ContainerView[],
): Promise<DiskUsageReport["images"]> {
  const index = await store.readIndex();
  const all = Object.values(index.images);
  const parents = new Set(all.map((r) => r.parent));
  const tagsOf = (id: string) => Object.keys(index.tags).filter((t) => index.tags[t] === id);
  const listed = all.filter((r) => tagsOf(r.id).length > 0 || !parents.has(r.id));
  const layerSize = new Map(all.flatMap((r) => r.layers.map((l) => [l.chainId, l.size] as const)));
  const holders = new Map<string, number>();
  for (const r of listed)
    for (const l of r.layers) holders.set(l.chainId, (holders.get(l.chainId) ?? 0) + 1);
  const kept = new Set(
    views
      .filter((c) => c.running)
      .flatMap((c) => index.images[c.imageId]?.layers.map((l) => l.chainId) ?? []),
  );
  const sum = (chains: Iterable<string>) =>
    [...chains].reduce((n, c) => n + (layerSize.get(c) ?? 0), 0);
  const items = listed.map((record) => ({
    record,
    tags: tagsOf(record.id),
    containers: views.filter((c) => c.imageId === record.id).length,
    sharedSize: sum(
      record.layers.filter((l) => (holders.get(l.chainId) ?? 0) > 1).map((l) => l.chainId),
    ),
  }));
  const size = sum(layerSize.keys());
  return {
    items,
    total: items.length,
    active: items.filter((i) => i.containers > 0).length,
    size,
    reclaimable: size - sum(kept),
  };
}

async function containerUsage(
  root: string,
  views: ContainerView[],
): Promise<DiskUsageReport["containers"]> {
  const items: ContainerUsage[] = [];
  for (const view of views)
    items.push({ view, size: await diskUsage(containerPaths(root, view.id).upper) });
  const size = items.reduce((n, i) => n + i.size, 0);
  return {
    items,
    total: items.length,
    active: items.filter((i) => i.view.running).length,
    size,
    reclaimable: items.filter((i) => !i.view.running).reduce((n, i) => n + i.size, 0),
  };
}

async function volumeUsage(
  root: string,
  views: ContainerView[],
): Promise<DiskUsageReport["volumes"]> {
  const users = (name: string, only = views) =>
    only.filter((c) => c.mounts?.some((m) => m.Type === "volume" && m.Name === name)).length;
  const running = views.filter((c) => c.running);
  const items: (VolumeUsage & { inUse: boolean })[] = [];
  for (const volume of await listVolumes(root)) {
    items.push({
      volume,
      links: users(volume.Name),
      size: await diskUsage(volumeData(root, volume.Name)),
      inUse: users(volume.Name, running) > 0,
    });
  }
  return {
    items,
    total: items.length,
    active: items.filter((i) => i.links > 0).length,
    size: items.reduce((n, i) => n + i.size, 0),
    reclaimable: items.filter((i) => !i.inUse).reduce((n, i) => n + i.size, 0),
  };
}

/**
 * The classic builder's cache is a map from step keys to images
 * (src/build/build-cache.ts): the images' layers are counted under Images,
 * so what the cache itself holds is its index file, which `builder prune`
 * deletes. Entries whose image is gone are not counted (they miss anyway).
 */
async function buildCacheUsage(store: Store): Promise<DiskUsageReport["buildCache"]> {
  const file = store.layout.buildCache;
  const entries = await readFile(file, "utf8")
    .then((text) => JSON.parse(text) as Record<string, string>)
    .catch(() => ({}) as Record<string, string>);
  const index = await store.readIndex();
  const items = Object.entries(entries)
    .filter(([, imageId]) => index.images[imageId])
    .map(([key, imageId]) => ({ key, imageId, createdAt: index.images[imageId]?.addedAt ?? "" }));
  const size = await stat(file).then(
    (s) => s.size,
    () => 0,
  );
  return { items, total: items.length, active: 0, size, reclaimable: size };
}
