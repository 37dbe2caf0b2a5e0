// readImageFile: an image's /etc/passwd as the container sees it, read on
// the host without ever leaving the image: links resolved inside the merged
// layers (clamped at the image's root), overlayfs's hiding rules on the way,
// no file larger than MAX_IMAGE_FILE read into memory.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MAX_IMAGE_FILE, readImageFile } from "../../src/image/image-file.js";
import type { LayerDir } from "../../src/image/image-tree.js";

const dir = mkdtempSync(path.join(tmpdir(), "minibox-imagefile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** A layer from {path: content | "dir" | {link}}. */
function layer(files: Record<string, string | { link: string }>, opaque: string[] = []): LayerDir {
  const root = path.join(dir, `layer-${n++}`);
  mkdirSync(root, { recursive: true });
  for (const [rel, what] of Object.entries(files)) {
    const full = path.join(root, rel);
    mkdirSync(path.dirname(full), { recursive: true });
    if (typeof what === "object") symlinkSync(what.link, full);
    else if (what === "dir") mkdirSync(full, { recursive: true });
    else writeFileSync(full, what);
  }
  return { dir: root, opaqueDirs: opaque };
}

/** A host directory the links aim at: a file the image must never read. */
const host = layer({ "etc/passwd": "host\n" });

describe("readImageFile", () => {
  it("reads the topmost layer's file", async () => {
    const layers = [layer({ "etc/passwd": "low\n" }), layer({ "etc/passwd": "high\n" })];
    expect(await readImageFile(layers, "/etc/passwd")).toBe("high\n");
  });

  it("follows an absolute link inside the image, not on the host", async () => {
    const layers = [layer({ "etc/real": "image\n", "etc/passwd": { link: "/etc/real" } })];
    expect(await readImageFile(layers, "/etc/passwd")).toBe("image\n");
    const toHost = [layer({ "etc/passwd": { link: path.join(host.dir, "etc/passwd") } })];
    expect(await readImageFile(toHost, "/etc/passwd")).toBeUndefined();
  });

  it("clamps ../ at the image's root, as the kernel does inside the container", async () => {
    const layers = [
      layer({ "data/passwd": "image\n", "etc/passwd": { link: "../../../../data/passwd" } }),
    ];
    expect(await readImageFile(layers, "/etc/passwd")).toBe("image\n");
  });

  it("resolves a linked directory on the way inside the image, across layers", async () => {
    const layers = [layer({ "usr/etc/passwd": "moved\n" }), layer({ etc: { link: "usr/etc" } })];
    expect(await readImageFile(layers, "/etc/passwd")).toBe("moved\n");
    const toHost = [layer({ etc: { link: path.join(host.dir, "etc") } })];
    expect(await readImageFile(toHost, "/etc/passwd")).toBeUndefined();
  });

  it("a higher layer's directory hides a lower layer's link at the same path", async () => {
    const layers = [
      layer({ etc: { link: path.join(host.dir, "etc") } }),
      layer({ "etc/group": "g\n" }),
    ];
    expect(await readImageFile(layers, "/etc/passwd")).toBeUndefined();
    expect(await readImageFile(layers, "/etc/group")).toBe("g\n");
  });

  it("an opaque directory above hides the lower layers' file", async () => {
    const layers = [layer({ "etc/passwd": "low\n" }), layer({ "etc/group": "g\n" }, ["etc"])];
    expect(await readImageFile(layers, "/etc/passwd")).toBeUndefined();
  });

  it("a file where a directory should be ends the lookup", async () => {
    const layers = [layer({ "etc/passwd": "low\n" }), layer({ etc: "not a dir" })];
    expect(await readImageFile(layers, "/etc/passwd")).toBeUndefined();
  });

  it("refuses a loop of links with one message", async () => {
    const layers = [
      layer({ "etc/a": { link: "b" }, "etc/b": { link: "a" }, "etc/passwd": { link: "a" } }),
    ];
    await expect(readImageFile(layers, "/etc/passwd")).rejects.toThrow(
      /too many levels of symbolic links/,
    );
  });

  it("refuses a file larger than MAX_IMAGE_FILE without reading it", async () => {
    const big = layer({ "etc/passwd": "" });
    truncateSync(path.join(big.dir, "etc/passwd"), MAX_IMAGE_FILE + 1);
    await expect(readImageFile([big], "/etc/passwd")).rejects.toThrow(/too large/);
  });
});
