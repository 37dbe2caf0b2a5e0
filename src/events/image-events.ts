/**
 * Image events as Docker writes them: pull and push name the reference
 * ("busybox:latest", name=busybox); tag names the image ID and the new tag
 * (name=web:1); untag, delete, load, save and import name the image ID twice.
 * The image's labels are attributes too, as Docker adds them while the
 * image exists (a delete passes no imageId: the image is gone).
 */
import { parseImageConfig } from "../image/manifest.js";
import type { Store } from "../image/store.js";
import { recordEvent } from "./journal.js";

export async function recordImageEvent(
  store: Store,
  action: string,
  actorId: string,
  name: string,
  imageId = actorId,
): Promise<void> {
  const labels = await imageLabels(store, imageId);
  await recordEvent(store.root, "image", action, {
    ID: actorId,
    Attributes: { ...labels, name },
  });
}

async function imageLabels(store: Store, imageId: string): Promise<Record<string, string>> {
  if (!imageId.startsWith("sha256:") || !store.hasBlob(imageId)) return {};
  try {
    return parseImageConfig(await store.readBlob(imageId)).config?.Labels ?? {};
  } catch {
    return {};
  }
}
