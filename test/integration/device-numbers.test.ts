// A character device 300/70000 (a major above the old 8 bits, a minor above
// both the old 8 bits and 16 bits) through every path that turns device
// numbers into tar headers or mknod(2) arguments: unpacking a layer, build's
// diff of an upper directory, a container's export, the shifted layer copy
// and the volume copy-up. Each must give back 300/70000, as stat(1) (glibc's
// major()/minor()) reads it. Runs as root (mknod).
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { gunzipSync } from "node:zlib";
import tar from "tar-stream";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { writeLayer } from "../../src/build/diff.js";
import { unpackLayer } from "../../src/image/layer.js";
import { containerPaths } from "../../src/layout.js";
import { shiftedCopy } from "../../src/runtime/rootfs.js";
import { copyUpIfEmpty, createVolume, volumeData } from "../../src/runtime/volumes.js";
import { mknod } from "../../src/sys/libc.js";
import { type Sandbox, sandbox } from "../support/minibox.js";
import { testEnv } from "../support/testenv.js";

const MAJOR = 300;
const MINOR = 70000;
const S_IFCHR = 0o020000;
const IMAGE = `${testEnv().registries.anon}/fixtures/base`;

let scratch: string;
let box: Sandbox;
beforeAll(() => {
  scratch = mkdtempSync(path.join(tmpdir(), "minibox-devnum-"));
  box = sandbox();
});
afterAll(async () => {
  const ids = (await box.run(["ps", "-aq", "--no-trunc"])).stdout.split("\n").filter(Boolean);
  if (ids.length) await box.run(["rm", "-f", ...ids]);
  box.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

/** major/minor as stat(1) reads them: an oracle independent of minibox's codec. */
function deviceOf(file: string): [number, number] {
  const r = spawnSync("stat", ["-c", "%t %T %F", file], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  const [major, minor, ...kind] = r.stdout.trim().split(" ");
  expect(kind.join(" ")).toBe("character special file");
  return [Number.parseInt(major as string, 16), Number.parseInt(minor as string, 16)];
}

/** Every device entry of a (possibly gzipped) tar: name → [major, minor]. */
async function devicesInTar(bytes: Buffer): Promise<Map<string, [number, number]>> {
  const out = new Map<string, [number, number]>();
  const extract = tar.extract();
  extract.on("entry", (header, stream, next) => {
    if (header.type === "character-device") {
      out.set(header.name, [header.devmajor ?? -1, header.devminor ?? -1]);
    }
    stream.resume();
    stream.on("end", next);
  });
  const raw = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
  await new Promise<void>((resolve, reject) => {
    extract.on("finish", resolve);
    extract.on("error", reject);
    extract.end(raw);
  });
  return out;
}

/** A layer tar holding `devs/big`, the device, and nothing else but its directory. */
async function layerTar(): Promise<Buffer> {
  const pack = tar.pack();
  const mtime = new Date("2024-01-01T00:00:00Z");
  pack.entry({ name: "devs/", type: "directory", mode: 0o755, mtime });
  pack.entry({
    name: "devs/big",
    type: "character-device",
    mode: 0o600,
    devmajor: MAJOR,
    devminor: MINOR,
    mtime,
  });
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** A directory with the device at devs/big, made with mknod(2). */
function treeWithDevice(name: string): string {
  const dir = path.join(scratch, name);
  mkdirSync(path.join(dir, "devs"), { recursive: true });
  mknod(path.join(dir, "devs", "big"), S_IFCHR | 0o600, MAJOR, MINOR);
  return dir;
}

describe(`a character device ${MAJOR}/${MINOR} keeps its numbers`, () => {
  test("mknod and stat(1) agree (the oracle)", () => {
    expect(deviceOf(path.join(treeWithDevice("oracle"), "devs", "big"))).toEqual([MAJOR, MINOR]);
  });

  test("unpack: a layer's device entry becomes the same device node", async () => {
    const dir = path.join(scratch, "unpacked");
    mkdirSync(dir);
    await unpackLayer(Readable.from([await layerTar()]), dir);
    expect(deviceOf(path.join(dir, "devs", "big"))).toEqual([MAJOR, MINOR]);
  });

  test("diff: build's upper directory → layer tar", async () => {
    const out = path.join(scratch, "layer.tar.gz");
    await writeLayer(treeWithDevice("upper"), out);
    const devices = await devicesInTar(readFileSync(out));
    expect(devices.get("devs/big")).toEqual([MAJOR, MINOR]);
  });

  test("copy walk: a layer copied with owners shifted", async () => {
    const dst = path.join(scratch, "shifted");
    await shiftedCopy(treeWithDevice("layer"), dst, { uid: 100000, gid: 100000 });
    expect(deviceOf(path.join(dst, "devs", "big"))).toEqual([MAJOR, MINOR]);
  });

  test("copy walk: a volume filled from the image (copy-up)", async () => {
    const root = path.join(scratch, "root");
    await createVolume(root, "devs");
    const layers = [{ dir: treeWithDevice("image-layer") }];
    expect(await copyUpIfEmpty(root, "devs", layers, "/devs")).toBe(true);
    expect(deviceOf(path.join(volumeData(root, "devs"), "big"))).toEqual([MAJOR, MINOR]);
  });

  test("export: a container's filesystem as a tar", async () => {
    const pulled = await box.run(["pull", "-q", IMAGE]);
    expect(pulled.code, pulled.stderr).toBe(0);
    const made = await box.run(["run", "--name", "devs", IMAGE, "true"]);
    expect(made.code, made.stderr).toBe(0);
    // What a privileged step would have left in the container's upper directory.
    const [id] = readdirSync(path.join(box.root, "containers"));
    const upper = containerPaths(box.root, id as string).upper;
    mkdirSync(path.join(upper, "devs"));
    mknod(path.join(upper, "devs", "big"), S_IFCHR | 0o600, MAJOR, MINOR);
    const file = path.join(scratch, "export.tar");
    const exported = await box.run(["export", "-o", file, "devs"]);
    expect(exported.code, exported.stderr).toBe(0);
    const devices = await devicesInTar(readFileSync(file));
    expect(devices.get("devs/big")).toEqual([MAJOR, MINOR]);
  });
});
