/** Small read-only views of an image's config, for listings. */
import { parseImageConfig } from "./manifest.js";
import type { ImageRecord, Store } from "./store.js";

/** The config's `created` time ("" when the image does not say). */
export async function readConfigCreated(store: Store, record: ImageRecord): Promise<string> {
  try {
    return parseImageConfig(await store.readBlob(record.id)).created ?? "";
  } catch {
    return "";
  }
}
