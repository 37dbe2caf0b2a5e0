// Unit tests for layer unpacking: tar archives are built in memory with
// tar-stream's pack() and unpacked into a fresh temporary directory. What
// needs root (owners, device nodes, trusted.* xattrs) is in
// test/integration/layer-unpack.test.ts.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MiniboxError } from "../../src/errors.js";
import { UnsafeLayerError, unpackLayer } from "../../src/image/layer.js";
import { lgetxattr } from "../../src/sys/libc.js";
import { makeTar, sha256, T2, type TestEntry } from "../support/layer-tar.js";

let tmp: string;
let dest: string;
/** A directory next to the layer directory: what an escaping entry would reach. */
let outside: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "minibox-layer-test-"));
  dest = path.join(tmp, "layer");
  outside = path.join(tmp, "outside");
  fs.mkdirSync(dest);
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, "secret"), "secret\n");
});

afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function unpackEntries(entries: TestEntry[], compress = true) {
  const raw = await makeTar(entries);
  return unpackLayer(Readable.from([compress ? gzipSync(raw) : raw]), dest);
}

const inLayer = (name: string) => path.join(dest, name);

describe("unpackLayer: stream handling", () => {
  const entries: TestEntry[] = [
    { name: "a", content: "hello" },
    { name: "b/", type: "directory" },
    { name: "b/c", content: "world!" },
    { name: "b/l", type: "symlink", linkname: "c" },
  ];

  it("returns the sha256 of the uncompressed tar as diffID, and the size", async () => {
    const raw = await makeTar(entries);
    const result = await unpackLayer(Readable.from([gzipSync(raw)]), dest);
    expect(result).toEqual({ diffID: sha256(raw), size: 11 });
  });

  it("accepts an uncompressed tar, with the same diffID", async () => {
    const raw = await makeTar(entries);
    const result = await unpackLayer(Readable.from([raw]), dest);
    expect(result.diffID).toBe(sha256(raw));
    expect(fs.readFileSync(inLayer("b/c"), "utf8")).toBe("world!");
  });

  it("detects gzip from magic bytes split across tiny chunks", async () => {
    const raw = await makeTar(entries);
    const gz = gzipSync(raw);
    const chunks = [gz.subarray(0, 1), gz.subarray(1, 2), gz.subarray(2, 3), gz.subarray(3)];
    const result = await unpackLayer(Readable.from(chunks), dest);
    expect(result.diffID).toBe(sha256(raw));
  });

  it("covers trailing padding in the diffID", async () => {
    const raw = Buffer.concat([await makeTar(entries), Buffer.alloc(8192)]);
    const result = await unpackLayer(Readable.from([gzipSync(raw)]), dest);
    expect(result.diffID).toBe(sha256(raw));
  });

  it("applies the last entry before resolving when end-of-archive blocks are missing", async () => {
    const full = await makeTar([
      { name: "f", content: "f" },
      { name: "last/", type: "directory", mode: 0o711, mtime: T2 },
    ]);
    const raw = full.subarray(0, full.length - 1024); // tar-stream ends with 1024 zero bytes
    const result = await unpackLayer(Readable.from([raw]), dest);
    expect(result.diffID).toBe(sha256(raw));
    const last = fs.lstatSync(inLayer("last"));
    expect(last.mode & 0o7777).toBe(0o711);
    expect(last.mtimeMs).toBe(T2.getTime());
  });

  it("accepts an empty layer", async () => {
    const raw = await makeTar([]);
    const result = await unpackLayer(Readable.from([gzipSync(raw)]), dest);
    expect(result).toEqual({ diffID: sha256(raw), size: 0 });
  });

  it("rejects a truncated gzip stream as corrupt", async () => {
    const gz = gzipSync(await makeTar(entries));
    const run = unpackLayer(Readable.from([gz.subarray(0, gz.length - 20)]), dest);
    await expect(run).rejects.toThrow(MiniboxError);
    await expect(run).rejects.toThrow("layer is corrupt: unexpected end of file");
  });

  it("rejects damaged gzip data as corrupt", async () => {
    const gz = gzipSync(await makeTar(entries));
    gz[3] = 0xff; // reserved flag bits set: zlib refuses the header
    await expect(unpackLayer(Readable.from([gz]), dest)).rejects.toThrow(/^layer is corrupt: /);
    const gz2 = gzipSync(await makeTar(entries));
    gz2.writeUInt32LE(gz2.readUInt32LE(gz2.length - 8) ^ 1, gz2.length - 8); // wrong CRC
    await expect(unpackLayer(Readable.from([gz2]), dest)).rejects.toThrow(/^layer is corrupt: /);
  });

  it("rejects a truncated tar as corrupt", async () => {
    const raw = await makeTar([{ name: "big", content: Buffer.alloc(5000, 1) }]);
    const run = unpackLayer(Readable.from([gzipSync(raw.subarray(0, 2000))]), dest);
    await expect(run).rejects.toThrow("layer is corrupt: unexpected end of data");
  });

  it("rejects data that is not a tar as corrupt", async () => {
    const junk = Buffer.alloc(2048, "not a tar archive ");
    await expect(unpackLayer(Readable.from([junk]), dest)).rejects.toThrow(
      /^layer is corrupt: invalid tar header/,
    );
  });

  it("refuses zstd layers with a clear error", async () => {
    const zstd = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]);
    await expect(unpackLayer(Readable.from([zstd]), dest)).rejects.toThrow(
      "zstd-compressed layers are not supported yet",
    );
  });

  it("reports an input stream failing inside gzip data as a read error", async () => {
    const gz = gzipSync(await makeTar(entries));
    async function* failing() {
      yield gz.subarray(0, 30);
      throw Object.assign(new Error("connection reset"), { code: "ECONNRESET" });
    }
    await expect(unpackLayer(Readable.from(failing()), dest)).rejects.toThrow(
      "could not read the layer: connection reset",
    );
  });

  it("reports a failing input stream as a read error", async () => {
    const input = new Readable({
      read() {
        this.destroy(Object.assign(new Error("connection reset"), { code: "ECONNRESET" }));
      },
    });
    await expect(unpackLayer(input, dest)).rejects.toThrow(
      "could not read the layer: connection reset",
    );
  });
});

describe("unpackLayer: path safety", () => {
  /** Unpacks and expects an UnsafeLayerError whose message matches. */
  async function expectUnsafe(entries: TestEntry[], message: string | RegExp) {
    const run = unpackEntries(entries);
    await expect(run).rejects.toThrow(UnsafeLayerError);
    await expect(run).rejects.toThrow(message);
  }

  it("refuses names that climb out with ..", async () => {
    await expectUnsafe(
      [{ name: "../escape", content: "x" }],
      'layer entry "../escape" escapes the layer directory',
    );
    await expectUnsafe([{ name: "a/../../escape", content: "x" }], '"a/../../escape" escapes');
    await expectUnsafe([{ name: "/../escape", content: "x" }], "escapes");
    await expectUnsafe([{ name: "../", type: "directory" }], "escapes");
    expect(fs.existsSync(path.join(tmp, "escape"))).toBe(false);
  });

  it("stops at an unsafe entry in the middle of a large layer", async () => {
    const run = unpackEntries([
      { name: "before", content: Buffer.alloc(2 * 1024 * 1024, 1) },
      { name: "../escape", content: "x" },
      { name: "after", content: Buffer.alloc(4 * 1024 * 1024, 2) },
    ]);
    await expect(run).rejects.toThrow(UnsafeLayerError);
    expect(fs.existsSync(path.join(tmp, "escape"))).toBe(false);
    expect(fs.existsSync(inLayer("after"))).toBe(false);
  });

  it("accepts .. that stays inside, and treats absolute names as relative to the layer", async () => {
    await unpackEntries([
      { name: "a/../b", content: "b" },
      { name: "/abs/x", content: "x" },
    ]);
    expect(fs.readFileSync(inLayer("b"), "utf8")).toBe("b");
    expect(fs.readFileSync(inLayer("abs/x"), "utf8")).toBe("x");
    expect(fs.existsSync(inLayer("a"))).toBe(false);
  });

  for (const [label, linkname] of [
    ["absolute", () => outside],
    ["relative", () => "../outside"],
  ] as const) {
    it(`refuses to write through a symlink (${label} target)`, async () => {
      const evil = { name: "evil", type: "symlink", linkname: linkname() } as const;
      await expectUnsafe(
        [evil, { name: "evil/passwd", content: "pwned" }],
        'layer entry "evil/passwd" goes through the symlink "evil"',
      );
      await expectUnsafe([evil, { name: "evil/sub/", type: "directory" }], "symlink");
      await expectUnsafe([evil, { name: "evil/sub/deep", content: "x" }], "symlink");
      await expectUnsafe([evil, { name: "evil/fifo", type: "fifo" }], "symlink");
      await expectUnsafe([evil, { name: "evil/l", type: "symlink", linkname: "x" }], "symlink");
      await expectUnsafe([evil, { name: "evil/.wh.secret" }], "symlink");
      await expectUnsafe([evil, { name: "evil/.wh..wh..opq" }], "symlink");
      expect(fs.readdirSync(outside)).toEqual(["secret"]);
      expect(fs.readFileSync(path.join(outside, "secret"), "utf8")).toBe("secret\n");
      expect(lgetxattr(outside, "trusted.overlay.opaque")).toBeUndefined();
    });
  }

  it("refuses to write through a symlink that replaced a directory", async () => {
    await expectUnsafe(
      [
        { name: "d/", type: "directory" },
        { name: "d/x", content: "x" },
        { name: "d", type: "symlink", linkname: outside },
        { name: "d/passwd", content: "pwned" },
      ],
      'layer entry "d/passwd" goes through the symlink "d"',
    );
    expect(fs.readdirSync(outside)).toEqual(["secret"]);
  });

  it("replaces a symlink at the entry's own path instead of following it", async () => {
    await unpackEntries([
      { name: "s", type: "symlink", linkname: path.join(outside, "secret") },
      { name: "s", content: "mine" },
      { name: "t", type: "symlink", linkname: outside },
      { name: "t/", type: "directory", mode: 0o700 },
    ]);
    expect(fs.readFileSync(inLayer("s"), "utf8")).toBe("mine");
    expect(fs.readFileSync(path.join(outside, "secret"), "utf8")).toBe("secret\n");
    expect(fs.lstatSync(inLayer("t")).isDirectory()).toBe(true);
    expect(fs.statSync(outside).mode & 0o7777).toBe(0o755);
  });

  it("never sets a directory's deferred times through a symlink that replaced it", async () => {
    const before = fs.statSync(outside).mtimeMs;
    await unpackEntries([
      { name: "t/", type: "directory", mtime: T2 },
      { name: "t", type: "symlink", linkname: outside },
    ]);
    expect(fs.statSync(outside).mtimeMs).toBe(before);
  });

  it("refuses hard links that climb out of the layer", async () => {
    await expectUnsafe(
      [{ name: "stolen", type: "link", linkname: "../outside/secret" }],
      'layer entry "stolen" is a hard link to "../outside/secret", outside the layer directory',
    );
    await expectUnsafe(
      [{ name: "stolen", type: "link", linkname: "../../outside/secret" }],
      "outside",
    );
    expect(fs.lstatSync(path.join(outside, "secret")).nlink).toBe(1);
  });

  it("refuses hard links through a symlink", async () => {
    await expectUnsafe(
      [
        { name: "evil", type: "symlink", linkname: outside },
        { name: "stolen", type: "link", linkname: "evil/secret" },
      ],
      'layer entry "stolen" goes through the symlink "evil"',
    );
    expect(fs.lstatSync(path.join(outside, "secret")).nlink).toBe(1);
    expect(fs.existsSync(inLayer("stolen"))).toBe(false);
  });

  it("reads an absolute hard link target inside the layer, where it does not exist", async () => {
    const run = unpackEntries([
      { name: "stolen", type: "link", linkname: path.join(outside, "secret") },
    ]);
    await expect(run).rejects.toThrow(MiniboxError);
    await expect(run).rejects.toThrow("which is not in the layer");
    expect(fs.lstatSync(path.join(outside, "secret")).nlink).toBe(1);
  });

  it("refuses whiteouts that climb out or name the parent", async () => {
    fs.writeFileSync(path.join(tmp, "x"), "x");
    await expectUnsafe([{ name: "../.wh.x" }], "escapes");
    await expectUnsafe(
      [{ name: "a/.wh..." }],
      'layer entry "a/.wh..." is a whiteout for an invalid name',
    );
    await expectUnsafe([{ name: ".wh..." }], "invalid name");
    await expectUnsafe([{ name: ".wh.." }], "invalid name");
    expect(fs.readFileSync(path.join(tmp, "x"), "utf8")).toBe("x");
    expect(fs.lstatSync(dest).isDirectory()).toBe(true);
  });

  it("refuses an entry that would replace the layer root", async () => {
    await expectUnsafe(
      [{ name: "./", type: "symlink", linkname: outside }],
      "replaces the layer root",
    );
    await expectUnsafe([{ name: ".", content: "x" }], "replaces the layer root");
  });
});
