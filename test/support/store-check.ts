// Independent checks of a minibox store's invariants, read straight from disk
// (not through minibox's own code): every blob matches its name, every layer
// directory is complete, every image in the index has all it needs.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";

export function layerDirs(root: string): string[] {
  const dir = path.join(root, "layers");
  if (!existsSync(dir)) return [];
  return readdirSync(dir).map((d) => path.join(dir, d));
}

export function imageIds(root: string): string[] {
  const file = path.join(root, "images.json");
  if (!existsSync(file)) return [];
  return Object.keys(JSON.parse(readFileSync(file, "utf8")).images);
}

export function assertStoreConsistent(root: string): void {
  const blobs = path.join(root, "blobs", "sha256");
  if (existsSync(blobs)) {
    for (const hex of readdirSync(blobs)) {
      const sum = createHash("sha256")
        .update(readFileSync(path.join(blobs, hex)))
        .digest("hex");
      if (sum !== hex) throw new Error(`blob ${hex} has content ${sum}`);
    }
  }
  for (const dir of layerDirs(root)) {
    if (!existsSync(path.join(dir, "layer.json")) || !existsSync(path.join(dir, "diff"))) {
      throw new Error(`layer ${dir} is incomplete`);
    }
  }
  const file = path.join(root, "images.json");
  if (!existsSync(file)) return;
  const index = JSON.parse(readFileSync(file, "utf8"));
  for (const [id, image] of Object.entries<{ layers: { chainId: string; digest: string }[] }>(
    index.images,
  )) {
    if (!existsSync(path.join(blobs, id.slice(7))))
      throw new Error(`image ${id} has no config blob`);
    for (const layer of image.layers) {
      if (!existsSync(path.join(root, "layers", layer.chainId.slice(7), "layer.json"))) {
        throw new Error(`image ${id} lacks layer ${layer.chainId}`);
      }
    }
  }
  for (const [tag, id] of Object.entries<string>(index.tags)) {
    if (!index.images[id]) throw new Error(`tag ${tag} points at missing image ${id}`);
  }
}
