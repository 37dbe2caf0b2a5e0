/**
 * Container IDs as runc accepts them: letters, digits and `_+-.`, and never
 * "." or "..". An ID becomes a directory name under --root, so anything that
 * could climb out of it is refused before a path is built.
 */
import { MiniboxError } from "../../errors.js";

const ID_PATTERN = /^[\w+\-.]+$/;

export function checkContainerId(id: string): string {
  if (!ID_PATTERN.test(id) || id === "." || id === "..") {
    throw new MiniboxError("invalid container ID format");
  }
  return id;
}
