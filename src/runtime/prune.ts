/**
 * The prunes `system prune` chains that are not already one function
 * elsewhere (images: src/image/images.ts, volumes: volumes.ts, networks:
 * network/networks.ts, build cache: src/build/build-cache.ts).
 */
import { containerPaths } from "../layout.js";
import { listViews, removeContainer, sweepContainers } from "./lifecycle.js";
import type { Liveness } from "./network/ipam.js";
import { listContainers } from "./state.js";
import { diskUsage } from "./volumes.js";

/** `container prune`: every container that is not running; the bytes are their writable layers. */
export async function pruneContainers(root: string): Promise<{ ids: string[]; bytes: number }> {
  await sweepContainers(root);
  const ids: string[] = [];
  let bytes = 0;
  for (const c of await listViews(root)) {
    if (c.running) continue;
    const size = await diskUsage(containerPaths(root, c.id).upper);
    await removeContainer(root, c, false);
    ids.push(c.id);
    bytes += size;
  }
  return { ids, bytes };
}

/** The store's containers that may hold a network address (not exited), for `network prune`. */
export async function networkLiveness(root: string): Promise<Liveness> {
  await sweepContainers(root);
  const all = await listContainers(root);
  return { root, live: new Set(all.filter((s) => s.status !== "exited").map((s) => s.id)) };
}
