// The merged view of an image's layers (COPY --from reads it): overlayfs's
// rules for whiteouts, opaque directories and files replacing directories.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type LayerDir, listImageTree, readImageFile } from "../../src/image/image-tree.js";
import { mknod } from "../../src/sys/libc.js";

const dir = mkdtempSync(path.join(tmpdir(), "minibox-tree-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A layer from {path: content | "dir" | "whiteout" | {link}}. */
function layer(
  name: string,
  files: Record<string, string | { link: string }>,
  opaque: string[] = [],
): LayerDir {
  const root = path.join(dir, name);
  mkdirSync(root, { recursive: true });
  for (const [rel, what] of Object.entries(files)) {
    const full = path.join(root, rel);
    mkdirSync(path.dirname(full), { recursive: true });
    if (typeof what === "object") symlinkSync(what.link, full);
    else if (what === "dir") mkdirSync(full, { recursive: true });
    else if (what === "whiteout") mknod(full, 0o20000 | 0o600, 0, 0);
    else writeFileSync(full, what);
  }
  return { dir: root, opaqueDirs: opaque };
}

const paths = async (layers: LayerDir[], root: string) =>
  (await listImageTree(layers, root)).map((e) => `${e.type[0]} ${e.path}`);

describe("listImageTree", () => {
  const bottom = layer("bottom", {
    "app/keep.txt": "keep",
    "app/gone.txt": "gone",
    "app/lib/old.so": "old",
    "etc/conf/a": "a",
    "data/x": "x",
    "bin/sh": { link: "busybox" },
  });
  const middle = layer(
    "middle",
    { "app/gone.txt": "whiteout", "etc/conf/b": "b", data: "now a file", "app/lib/new.so": "new" },
    [],
  );
  const top = layer("top", { "app/lib/top.so": "top", "etc/conf": "dir" }, ["etc/conf"]);
  const layers = [bottom, middle, top];

  it("merges directories, hides whiteouts, opaque dirs and replaced directories", async () => {
    expect(await paths(layers, "/")).toEqual([
      "d ",
      "d app",
      "f app/keep.txt",
      "d app/lib",
      "f app/lib/new.so",
      "f app/lib/old.so",
      "f app/lib/top.so",
      "d bin",
      "s bin/sh",
      "f data",
      "d etc",
      "d etc/conf",
    ]);
  });

  it("lists a subtree with the same rules, and the winning layer's bytes", async () => {
    expect(await paths(layers, "app/lib")).toEqual([
      "d app/lib",
      "f app/lib/new.so",
      "f app/lib/old.so",
      "f app/lib/top.so",
    ]);
    expect(await paths(layers, "/etc/conf")).toEqual(["d etc/conf"]);
    expect(await paths(layers, "data/x")).toEqual([]);
    expect(await paths(layers, "app/gone.txt")).toEqual([]);
    const [data] = await listImageTree(layers, "data");
    expect(data?.source).toBe(path.join(middle.dir, "data"));
    expect((await listImageTree(layers, "bin/sh"))[0]?.linkTarget).toBe("busybox");
  });

  it("reads one file the same way", async () => {
    expect(await readImageFile(layers, "/app/keep.txt")).toBe("keep");
    expect(await readImageFile(layers, "/app/gone.txt")).toBeUndefined();
    expect(await readImageFile(layers, "/etc/conf/a")).toBeUndefined();
    expect(await readImageFile(layers, "/data")).toBe("now a file");
  });
});
