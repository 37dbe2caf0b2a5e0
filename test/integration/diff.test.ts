// Unit tests for writeLayer (src/build/diff.ts): an overlayfs upper directory
// is built by hand in a temporary directory (whiteouts as 0/0 character
// devices, opaque directories as trusted.overlay.opaque), turned into a layer,
// then read back with tar-stream and with unpackLayer. They run as root
// (mknod, chown, trusted.* xattrs need it).
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { gunzipSync, gzipSync } from "node:zlib";
import tar from "tar-stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { writeLayer } from "../../src/build/diff.js";
import { MiniboxError } from "../../src/errors.js";
import { unpackLayer } from "../../src/image/layer.js";
import { lgetxattr, lsetxattr, mknod } from "../../src/sys/libc.js";

const SHIFT = 100000;
const S_IFCHR = 0o020000;
/** A fixed time for everything, so the expected headers are exact. */
const T1 = new Date("2001-02-03T04:05:06Z");

let tmp: string;
let upper: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "minibox-diff-test-"));
  upper = path.join(tmp, "upper");
  fs.mkdirSync(upper);
});

afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const sha256 = (data: Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;
const up = (rel: string) => path.join(upper, rel);

/** What a Dockerfile RUN step might leave in the upper directory, owned by the shifted root. */
function buildUpper(): void {
  const own = (rel: string, id = 0) => fs.lchownSync(up(rel), SHIFT + id, SHIFT + id);

  fs.mkdirSync(up("bin"));
  fs.writeFileSync(up("bin/su"), "su");
  fs.writeFileSync(up("bin/tool"), "#!/bin/sh\n");

  fs.mkdirSync(up("data"));
  fs.writeFileSync(up("data/one"), "shared inode");
  fs.linkSync(up("data/one"), up("data/two"));

  fs.mkdirSync(up("etc"));
  fs.writeFileSync(up("etc/config"), "key=value\n");
  lsetxattr(up("etc/config"), "user.test", Buffer.from("hello"));
  // overlayfs bookkeeping that must never reach the layer.
  lsetxattr(up("etc/config"), "trusted.overlay.origin", Buffer.from([0, 1, 2]));

  fs.symlinkSync("etc/config", up("link"));

  // Deleted files: overlayfs shares one whiteout inode between them (hard
  // links), which must still come out as two whiteouts, not a link.
  mknod(up("gone"), S_IFCHR | 0o644, 0, 0);
  fs.linkSync(up("gone"), up("gone2"));

  fs.mkdirSync(up("opt"));
  lsetxattr(up("opt"), "trusted.overlay.opaque", Buffer.from("y"));
  fs.writeFileSync(up("opt/kept"), "kept");

  fs.mkdirSync(up("home"));
  fs.writeFileSync(up("home/alice"), "a");

  for (const rel of ["bin", "bin/tool", "data", "data/one", "etc", "etc/config", "link"]) own(rel);
  for (const rel of ["gone", "opt", "opt/kept", "home"]) own(rel);
  own("home/alice", 1000);
  own("bin/su");
  // chown clears setuid: set the modes once owners are final.
  fs.chmodSync(up("bin/su"), 0o4755);
  fs.chmodSync(up("bin/tool"), 0o755);
  fs.chmodSync(up("etc/config"), 0o644);
  fs.chmodSync(up("data/one"), 0o640);
  fs.chmodSync(up("opt"), 0o750);

  setTimes(T1);
}

/** Sets every mtime under the upper directory (children before their parents). */
function setTimes(time: Date): void {
  const visit = (dir: string) => {
    for (const name of fs.readdirSync(dir)) {
      const full = path.join(dir, name);
      if (fs.lstatSync(full).isDirectory()) visit(full);
      fs.lutimesSync(full, time, time);
    }
  };
  visit(upper);
}

interface Listed {
  name: string;
  type: string | null;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string | null;
  devmajor: number;
  devminor: number;
  pax: Record<string, string> | null;
}

/** The entries of a gzip tar file, in order. */
async function listEntries(blob: string): Promise<Listed[]> {
  const extract = tar.extract();
  const entries: Listed[] = [];
  const done = new Promise<void>((resolve, reject) => {
    extract.on("entry", (h, stream, next) => {
      entries.push({
        name: h.name,
        type: h.type,
        mode: h.mode ?? 0,
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        size: h.size ?? 0,
        mtime: (h.mtime?.getTime() ?? 0) / 1000,
        linkname: h.linkname ?? null,
        devmajor: h.devmajor ?? 0,
        devminor: h.devminor ?? 0,
        pax: (h.pax as Record<string, string> | null | undefined) ?? null,
      });
      stream.on("end", () => next());
      stream.resume();
    });
    extract.on("finish", resolve);
    extract.on("error", reject);
  });
  extract.end(gunzipSync(fs.readFileSync(blob)));
  await done;
  return entries;
}

describe("writeLayer", () => {
  it("writes an upper directory as sorted OCI tar entries", async () => {
    buildUpper();
    const out = path.join(tmp, "layer.tar.gz");
    const blob = await writeLayer(upper, out, { idShift: { uid: SHIFT, gid: SHIFT } });
    expect(blob.path).toBe(out);
    expect(blob.empty).toBe(false);

    const entries = await listEntries(out);
    expect(entries.map((e) => [e.name, e.type])).toEqual([
      ["bin/", "directory"],
      ["bin/su", "file"],
      ["bin/tool", "file"],
      ["data/", "directory"],
      ["data/one", "file"],
      ["data/two", "link"],
      ["etc/", "directory"],
      ["etc/config", "file"],
      [".wh.gone", "file"],
      [".wh.gone2", "file"],
      ["home/", "directory"],
      ["home/alice", "file"],
      ["link", "symlink"],
      ["opt/", "directory"],
      ["opt/.wh..wh..opq", "file"],
      ["opt/kept", "file"],
    ]);
    const byName = new Map(entries.map((e) => [e.name, e]));
    const get = (name: string) => byName.get(name) as Listed;

    // Modes, setuid included.
    expect(get("bin/su").mode).toBe(0o4755);
    expect(get("bin/tool").mode).toBe(0o755);
    expect(get("etc/config").mode).toBe(0o644);
    expect(get("data/one").mode).toBe(0o640);
    expect(get("opt/").mode).toBe(0o750);
    // Owners shifted back: the container's root is 0 again, its user 1000 is 1000.
    for (const e of entries) {
      const id = e.name === "home/alice" ? 1000 : 0;
      expect([e.name, e.uid, e.gid]).toEqual([e.name, id, id]);
    }
    // Contents and times.
    expect(get("bin/su").size).toBe(2);
    expect(get("etc/config").size).toBe("key=value\n".length);
    for (const e of entries) expect([e.name, e.mtime]).toEqual([e.name, T1.getTime() / 1000]);

    // A hard link points at the first name of the inode; a symlink keeps its target.
    expect(get("data/two").linkname).toBe("data/one");
    expect(get("data/two").size).toBe(0);
    expect(get("link").linkname).toBe("etc/config");

    // Whiteouts: empty 0600 files; the opaque marker takes the directory's permissions.
    expect(get(".wh.gone")).toMatchObject({ size: 0, mode: 0o600 });
    expect(get("opt/.wh..wh..opq")).toMatchObject({ size: 0, mode: 0o750, uid: 0 });

    // user.* xattrs as PAX records; trusted.overlay.* never.
    expect(get("etc/config").pax).toEqual({
      path: "etc/config",
      "SCHILY.xattr.user.test": "hello",
    });
    for (const e of entries) {
      for (const key of Object.keys(e.pax ?? {})) expect(key).not.toContain("trusted.overlay");
    }
    expect(get("opt/").pax).toBeNull();
  });

  it("returns digest, diffID and size of what it wrote, with a timeless gzip header", async () => {
    buildUpper();
    const out = path.join(tmp, "layer.tar.gz");
    const blob = await writeLayer(upper, out, { idShift: { uid: SHIFT, gid: SHIFT } });
    const gz = fs.readFileSync(out);
    expect(blob.digest).toBe(sha256(gz));
    expect(blob.diffID).toBe(sha256(gunzipSync(gz)));
    expect(blob.size).toBe(gz.length);
    // gzip header: magic, then MTIME (bytes 4-7) zero and OS (byte 9) 3 = Unix.
    expect([gz[0], gz[1]]).toEqual([0x1f, 0x8b]);
    expect(gz.readUInt32LE(4)).toBe(0);
    expect(gz[9]).toBe(3);
  });

  it("round-trips through unpackLayer: whiteouts, opaque dirs, links, owners", async () => {
    buildUpper();
    const out = path.join(tmp, "layer.tar.gz");
    const blob = await writeLayer(upper, out, { idShift: { uid: SHIFT, gid: SHIFT } });
    const fresh = path.join(tmp, "fresh");
    fs.mkdirSync(fresh);
    const result = await unpackLayer(fs.createReadStream(out), fresh);
    expect(result.diffID).toBe(blob.diffID);

    const at = (rel: string) => path.join(fresh, rel);
    for (const rel of ["gone", "gone2"]) {
      const st = fs.lstatSync(at(rel));
      expect(st.isCharacterDevice()).toBe(true);
      expect(st.rdev).toBe(0);
    }
    expect(lgetxattr(at("opt"), "trusted.overlay.opaque")?.toString()).toBe("y");
    expect(fs.readFileSync(at("opt/kept"), "utf8")).toBe("kept");
    expect(fs.existsSync(at("opt/.wh..wh..opq"))).toBe(false);
    expect(fs.lstatSync(at("bin/su")).mode & 0o7777).toBe(0o4755);
    expect(fs.lstatSync(at("data/one")).ino).toBe(fs.lstatSync(at("data/two")).ino);
    expect(fs.readlinkSync(at("link"))).toBe("etc/config");
    expect(lgetxattr(at("etc/config"), "user.test")?.toString()).toBe("hello");
    expect(lgetxattr(at("etc/config"), "trusted.overlay.origin")).toBeUndefined();
    const alice = fs.lstatSync(at("home/alice"));
    expect([alice.uid, alice.gid]).toEqual([1000, 1000]);
  });

  it("is deterministic, and clamps mtimes to SOURCE_DATE_EPOCH", async () => {
    buildUpper();
    const epoch = Math.floor(new Date("2000-01-01T00:00:00Z").getTime() / 1000);
    // Before T1, so even the first layer's times are clamped.
    const options = { idShift: { uid: SHIFT, gid: SHIFT }, sourceDateEpoch: epoch };
    const first = await writeLayer(upper, path.join(tmp, "a.tar.gz"), options);
    // Without changes, the same bytes again, even without an epoch.
    const plain = await writeLayer(upper, path.join(tmp, "p1.tar.gz"));
    expect((await writeLayer(upper, path.join(tmp, "p2.tar.gz"))).digest).toBe(plain.digest);

    // Touching everything (later than the epoch) must not change the layer.
    setTimes(new Date());
    const second = await writeLayer(upper, path.join(tmp, "b.tar.gz"), options);
    expect(second.digest).toBe(first.digest);
    expect(second.diffID).toBe(first.diffID);
    expect(fs.readFileSync(path.join(tmp, "b.tar.gz"))).toEqual(
      fs.readFileSync(path.join(tmp, "a.tar.gz")),
    );
    for (const e of await listEntries(second.path)) expect(e.mtime).toBe(epoch);

    // Times older than the epoch are kept as they are.
    const old = await listEntries(
      (await writeLayer(upper, path.join(tmp, "c.tar.gz"), { ...options, sourceDateEpoch: 2e9 }))
        .path,
    );
    expect(old.every((e) => e.mtime < 2e9 && e.mtime > epoch)).toBe(true);
  });

  it("reports an empty upper directory as an empty layer", async () => {
    const out = path.join(tmp, "empty.tar.gz");
    const blob = await writeLayer(upper, out);
    expect(blob.empty).toBe(true);
    expect(await listEntries(out)).toEqual([]);
    // Still a valid tar: the two zero blocks that end an archive.
    expect(gunzipSync(fs.readFileSync(out))).toEqual(Buffer.alloc(1024));
    expect(blob.diffID).toBe(sha256(Buffer.alloc(1024)));
  });

  it("writes devices and fifos as such, and large files streamed", async () => {
    mknod(up("null"), S_IFCHR | 0o666, 1, 3);
    fs.chmodSync(up("null"), 0o666); // mknod's mode went through the umask
    fs.mkdirSync(up("run"));
    mknod(up("run/pipe"), 0o010000 | 0o600, 0, 0);
    const big = Buffer.alloc(3 * 1024 * 1024 + 7, 0x61);
    fs.writeFileSync(up("big"), big);
    const out = path.join(tmp, "layer.tar.gz");
    await writeLayer(upper, out);
    const entries = await listEntries(out);
    expect(entries.map((e) => [e.name, e.type])).toEqual([
      ["big", "file"],
      ["null", "character-device"],
      ["run/", "directory"],
      ["run/pipe", "fifo"],
    ]);
    expect(entries[0]?.size).toBe(big.length);
    // The gzip bytes depend only on the tar bytes, not on how they were
    // chunked on the way: one-shot gzip of the same tar gives the same blob.
    const gz = fs.readFileSync(out);
    expect(gzipSync(gunzipSync(gz)).equals(gz)).toBe(true);
    expect(entries[1]).toMatchObject({ devmajor: 1, devminor: 3, mode: 0o666 });

    const fresh = path.join(tmp, "fresh");
    fs.mkdirSync(fresh);
    await unpackLayer(Readable.from([fs.readFileSync(out)]), fresh);
    expect(fs.readFileSync(path.join(fresh, "big")).equals(big)).toBe(true);
    expect(fs.lstatSync(path.join(fresh, "null")).rdev).toBe(fs.lstatSync("/dev/null").rdev);
  });

  it("refuses what a layer cannot express, and leaves no blob behind", async () => {
    const out = path.join(tmp, "layer.tar.gz");

    // An owner outside the container's id range.
    fs.writeFileSync(up("host-owned"), "x");
    await expect(writeLayer(upper, out, { idShift: { uid: SHIFT, gid: SHIFT } })).rejects.toThrow(
      MiniboxError,
    );
    expect(fs.existsSync(out)).toBe(false);
    fs.rmSync(up("host-owned"));

    // A real file whose name would read back as a whiteout (found after
    // other entries were written: the half-written blob is removed).
    fs.writeFileSync(up("a"), Buffer.alloc(256 * 1024));
    fs.mkdirSync(up("z"));
    fs.writeFileSync(up("z/.wh.oops"), "x");
    await expect(writeLayer(upper, out)).rejects.toThrow(/\.wh\./);
    expect(fs.existsSync(out)).toBe(false);
    fs.rmSync(up("z"), { recursive: true });

    // The output cannot be written: the error comes out, nothing hangs.
    await expect(writeLayer(upper, path.join(tmp, "missing", "layer.tar.gz"))).rejects.toThrow(
      /ENOENT/,
    );

    // A renamed directory whose contents overlayfs left in the lower layer.
    fs.mkdirSync(up("moved"));
    lsetxattr(up("moved"), "trusted.overlay.redirect", Buffer.from("/old"));
    await expect(writeLayer(upper, out)).rejects.toThrow(/left part of it in a lower layer/);
    expect(fs.existsSync(out)).toBe(false);
  });
});
