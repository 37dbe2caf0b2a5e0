/**
 * Image events as Docker writes them: pull and push name the reference
 * ("busybox:latest", name=busybox); tag names the image ID and the new tag
 * (name=web:1); untag, delete, load, save and import name the image ID twice.
 */
import { recordEvent } from "./journal.js";

export async function recordImageEvent(
  root: string,
  action: string,
  id: string,
  name: string,
): Promise<void> {
  await recordEvent(root, "image", action, { ID: id, Attributes: { name } });
}
