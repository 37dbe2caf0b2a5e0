// tag, rmi and import on a store filled by real pulls.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { oneLineError, type Sandbox, sandbox } from "../support/minibox.js";
import { assertStoreConsistent, imageIds, layerDirs } from "../support/store-check.js";
import { testEnv } from "../support/testenv.js";

const env = testEnv();
const anon = env.registries.anon;
const fx = env.fixtures;

let box: Sandbox;
beforeEach(() => {
  box = sandbox();
});
afterEach(() => {
  box.cleanup();
});

describe("tag and rmi", () => {
  test("tag adds a name; rmi of one name untags; rmi of the last deletes image, blobs and layers", async () => {
    await box.run(["pull", "-q", `${anon}/fixtures/base`]);
    const tag = await box.run(["tag", `${anon}/fixtures/base`, "mybase:1"]);
    expect(tag.code, tag.stderr).toBe(0);
    const images = await box.run(["images"]);
    expect(images.stdout).toMatch(/^mybase\s+1\s+/m);

    const untag = await box.run(["rmi", "mybase:1"]);
    expect(untag.code, untag.stderr).toBe(0);
    expect(untag.stdout).toBe("Untagged: mybase:1\n");
    expect(imageIds(box.root)).toEqual([fx.base.configDigest]);

    const rm = await box.run(["rmi", `${anon}/fixtures/base`]);
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stdout).toContain(`Untagged: ${anon}/fixtures/base:latest`);
    expect(rm.stdout).toContain(`Deleted: ${fx.base.configDigest}`);
    expect(imageIds(box.root)).toEqual([]);
    expect(layerDirs(box.root)).toEqual([]);
    expect(readdirSync(path.join(box.root, "blobs", "sha256"))).toEqual([]);
  });

  test("rmi keeps layers another image still uses", async () => {
    await box.run(["pull", "-q", `${anon}/fixtures/base`]);
    await box.run(["pull", "-q", `${anon}/fixtures/layered`]);
    expect(layerDirs(box.root)).toHaveLength(3);
    const rm = await box.run(["rmi", `${anon}/fixtures/layered`]);
    expect(rm.code, rm.stderr).toBe(0);
    // The base layer is shared with fixtures/base (same chain ID): it stays.
    expect(layerDirs(box.root)).toHaveLength(1);
    assertStoreConsistent(box.root);
    const run = await box.run(["image", "inspect", `${anon}/fixtures/base`]);
    expect(run.code).toBe(0);
  });

  test("rmi by ID with several names needs -f; rmi of an unknown image fails clearly", async () => {
    await box.run(["pull", "-q", `${anon}/fixtures/base`]);
    await box.run(["tag", `${anon}/fixtures/base`, "other:2"]);
    const id = fx.base.configDigest.slice(7, 19);
    const refused = await box.run(["rmi", id]);
    expect(refused.code).not.toBe(0);
    expect(oneLineError(refused)).toMatch(/must be forced.*referenced in multiple repositories/);
    const forced = await box.run(["rmi", "-f", id]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(imageIds(box.root)).toEqual([]);
    const unknown = await box.run(["rmi", "nothere:1"]);
    expect(unknown.code).not.toBe(0);
    expect(oneLineError(unknown)).toMatch(/no such image: nothere:1/);
  });

  test("rmi refuses while a container uses the image", async () => {
    await box.run(["pull", "-q", `${anon}/fixtures/base`]);
    // A container's state as `run` records it (containers/<id>/state.json).
    const dir = path.join(box.root, "containers", "c0ffee".padEnd(64, "0"));
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "state.json"), JSON.stringify({ imageId: fx.base.configDigest }));
    const r = await box.run(["rmi", `${anon}/fixtures/base`]);
    expect(r.code).not.toBe(0);
    expect(oneLineError(r)).toMatch(/being used by container c0ffee000000/);
    expect(imageIds(box.root)).toEqual([fx.base.configDigest]);
  });
});

describe("import", () => {
  test("a rootfs tarball (gzip or plain) becomes a one-layer image", async () => {
    const layerBlob = path.join(
      fx.base.layoutDir,
      "blobs",
      "sha256",
      (fx.base.layerDigests[0] as string).slice(7),
    );
    const r = await box.run(["import", layerBlob, "imported:gz"]);
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    expect(id).toMatch(/^sha256:[a-f0-9]{64}$/);
    const info = JSON.parse((await box.run(["image", "inspect", "imported:gz"])).stdout)[0];
    expect(info.Id).toBe(id);
    expect(info.RootFS.Layers).toEqual(fx.base.diffIds);

    const dir = mkdtempSync(path.join(tmpdir(), "minibox-import-"));
    try {
      const plain = path.join(dir, "rootfs.tar");
      execFileSync("sh", ["-c", `gunzip -c '${layerBlob}' > '${plain}'`]);
      const r2 = await box.run(["import", plain, "imported:plain"]);
      expect(r2.code, r2.stderr).toBe(0);
      const info2 = JSON.parse((await box.run(["image", "inspect", "imported:plain"])).stdout)[0];
      expect(info2.RootFS.Layers).toEqual(fx.base.diffIds);
      // Same content, same layer: stored once.
      expect(layerDirs(box.root)).toHaveLength(1);
      const history = await box.run(["history", "imported:plain"]);
      expect(history.stdout).toContain("Imported from rootfs.tar");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assertStoreConsistent(box.root);
  });

  test("a missing file or a non-tar file fails clearly and stores nothing", async () => {
    const missing = await box.run(["import", "/nonexistent/rootfs.tar", "x:1"]);
    expect(missing.code).not.toBe(0);
    expect(oneLineError(missing)).toMatch(/no such file/);
    const dir = mkdtempSync(path.join(tmpdir(), "minibox-import-"));
    try {
      const junk = path.join(dir, "junk.tar");
      writeFileSync(junk, "this is not a tar archive, just text that goes on and on".repeat(20));
      const bad = await box.run(["import", junk, "x:1"]);
      expect(bad.code).not.toBe(0);
      oneLineError(bad);
      expect(imageIds(box.root)).toEqual([]);
      expect(layerDirs(box.root)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
