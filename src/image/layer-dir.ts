/**
 * Unpacking a layer into a layer directory (src/layout.ts layerPaths: diff/
 * and layer.json), as pull, load, import and build's commit all do in a
 * staging directory before it is renamed into <root>/layers/.
 */
import { mkdir } from "node:fs/promises";
import type { Readable } from "node:stream";
import { layerPaths } from "../layout.js";
import { opaqueDirOf, type UnpackResult, unpackLayer } from "./layer.js";

export interface UnpackedLayerDir {
  result: UnpackResult;
  /**
   * The directories the layer makes opaque, noted while unpacking so that
   * reading an image file later needs no xattr calls (LayerRecord.opaqueDirs).
   */
  opaqueDirs: string[];
}

/** Unpack a tar stream into `dir`'s diff/ (made here; `dir` may not exist yet). */
export async function unpackLayerDir(
  input: NodeJS.ReadableStream | Readable,
  dir: string,
): Promise<UnpackedLayerDir> {
  const diff = layerPaths(dir).diff;
  await mkdir(diff, { recursive: true, mode: 0o755 });
  const opaqueDirs: string[] = [];
  const result = await unpackLayer(input, diff, {
    onEntry: (name, kind) => {
      if (kind === "opaque") opaqueDirs.push(opaqueDirOf(name));
    },
  });
  return { result, opaqueDirs };
}
