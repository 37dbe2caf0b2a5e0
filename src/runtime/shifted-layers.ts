/**
 * Where idmapped mounts do not work: the image's layers copied once per uid
 * range with their owners shifted into it, so the container's root owns
 * what the image's root owned. Shared by every container of that range.
 */
import { existsSync } from "node:fs";
import { mkdir, rename } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { ImageRecord, Store } from "../image/store.js";
import { rootLayout } from "../layout.js";
import { withLock } from "../sys/lock.js";
import type { UsernsState } from "./idmap.js";
import { shiftedCopy } from "./rootfs.js";
import type { Tracer } from "./trace.js";

/** One layer's shifted copy, made under a lock (two runs may want it at once) and renamed into place whole. */
async function shiftLayer(store: Store, chainId: string, userns: UsernsState, trace: Tracer) {
  const hex = chainId.slice(7);
  const dir = join(rootLayout(store.root).layersShifted, String(userns.uid.hostID), hex);
  const diff = join(dir, "diff");
  await withLock(store.lockPath(`shift-${hex}`), async () => {
    if (existsSync(diff)) return;
    const t = performance.now();
    const staging = store.tmpPath("shift");
    await mkdir(staging, { recursive: true });
    await shiftedCopy(store.layerDiffDir(chainId), join(staging, "diff"), {
      uid: userns.uid.hostID,
      gid: userns.gid.hostID,
    });
    await mkdir(dirname(dir), { recursive: true });
    await rename(staging, dir);
    trace(
      `copied layer ${hex.slice(0, 12)} with owners shifted by ${userns.uid.hostID}`,
      performance.now() - t,
    );
  });
  return diff;
}

/** The image's layers, lowest first, with owners shifted into the container's range. */
export async function shiftedLayers(
  ctx: { store: Store },
  image: ImageRecord,
  userns: UsernsState,
  trace: Tracer,
): Promise<string[]> {
  const out: string[] = [];
  for (const layer of image.layers)
    out.push(await shiftLayer(ctx.store, layer.chainId, userns, trace));
  return out;
}
