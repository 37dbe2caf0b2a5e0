// Tar escapes (CVE-2014-6407, CVE-2014-9356 and their family in every
// engine since): an archive whose entries try to write outside the
// directory it is unpacked into — `../` names, absolute names, a symlink
// followed by a write through it, a hard link to a host file, device nodes,
// a whiteout aimed at `../`. minibox unpacks archives on the host as root in
// four places: a pulled layer, `load`, `import`, and a build's
// `ADD archive.tar /dir/`; each gets every hostile archive. Each must be
// refused with one clear line (and the store left as it was) or unpacked
// inside; the host files the entries aim at stay as they were.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  busyboxLayer,
  layoutArchive,
  makeTar,
  pushHostile,
  type TestEntry,
  writeHostileLayout,
} from "../support/hostile.js";
import { oneLineError, type Result, type Sandbox, sandbox } from "../support/minibox.js";
import { testEnv } from "../support/testenv.js";

const BASE = `${testEnv().registries.anon}/fixtures/base`;

let box: Sandbox;
let work: string;
/** The host directory the entries aim at, with a file to overwrite, link to, or white out. */
let hostDir: string;
let hostFile: string;
let base: Buffer;

beforeAll(async () => {
  box = sandbox();
  work = mkdtempSync(path.join(tmpdir(), "minibox-tarescape-"));
  hostDir = path.join(work, "host");
  mkdirSync(hostDir);
  hostFile = path.join(hostDir, "victim");
  writeFileSync(hostFile, "the host's own file\n");
  base = await busyboxLayer();
  const r = await box.run(["pull", "-q", BASE]);
  expect(r.code, r.stderr).toBe(0);
});
afterAll(() => {
  box.cleanup();
  rmSync(work, { recursive: true, force: true });
});

interface Case {
  name: string;
  entries: () => TestEntry[];
  /** Refused, or unpacked inside (then `inside` names the path the entry must have in the unpacked tree). */
  expect: "refused" | "inside";
}

const up = "../../../../../../../../../../..";
const CASES: Case[] = [
  {
    name: "a ../ name climbing to a host directory",
    entries: () => [{ name: `${up}${hostDir}/dotdot.txt`, content: "escaped\n" }],
    expect: "refused",
  },
  {
    name: "an absolute name (taken as relative to the archive's root, as Docker does)",
    entries: () => [{ name: `${hostDir}/absolute.txt`, content: "inside\n" }],
    expect: "inside",
  },
  {
    name: "a symlink to a host directory, then a file written through it",
    entries: () => [
      { name: "link", type: "symlink", linkname: hostDir },
      { name: "link/through.txt", content: "escaped\n" },
    ],
    expect: "refused",
  },
  {
    name: "a symlink to a host file, then the same name as a file (replaced, never written through)",
    entries: () => [
      { name: "victim-link", type: "symlink", linkname: hostFile },
      { name: "victim-link", content: "replaced the link\n" },
    ],
    expect: "inside",
  },
  {
    name: "a hard link to a host file by its absolute path",
    entries: () => [{ name: "hard", type: "link", linkname: hostFile }],
    expect: "refused",
  },
  {
    name: "a hard link to a host file through ../",
    entries: () => [{ name: "hard", type: "link", linkname: `${up}${hostFile}` }],
    expect: "refused",
  },
  {
    name: "a hard link through a symlink to a host directory",
    entries: () => [
      { name: "dirlink", type: "symlink", linkname: hostDir },
      { name: "hard", type: "link", linkname: "dirlink/victim" },
    ],
    expect: "refused",
  },
  {
    name: "device nodes (the host's /dev/null and a disk's numbers)",
    entries: () => [
      { name: "null", type: "character-device", devmajor: 1, devminor: 3, mode: 0o666 },
      { name: "disk", type: "block-device", devmajor: 8, devminor: 0, mode: 0o600 },
    ],
    expect: "inside",
  },
  {
    name: "a whiteout aimed at ../",
    entries: () => [{ name: `${up}${hostDir}/.wh.victim` }],
    expect: "refused",
  },
  {
    name: "a whiteout of '..'",
    entries: () => [{ name: "dir/", type: "directory" }, { name: "dir/.wh.." }],
    expect: "refused",
  },
  {
    name: "a whiteout through a symlink to a host directory",
    entries: () => [
      { name: "wlink", type: "symlink", linkname: hostDir },
      { name: "wlink/.wh.victim" },
    ],
    expect: "refused",
  },
];

/** What the host directory holds, with each file's content, mode, link count and mtime. */
function hostState(): string {
  return readdirSync(hostDir)
    .sort()
    .map((f) => {
      const p = path.join(hostDir, f);
      const st = statSync(p);
      return `${f} ${st.mode} ${st.nlink} ${st.mtimeMs} ${readFileSync(p, "utf8")}`;
    })
    .join("\n");
}

/** The store's images, layers and blobs (what a refusal must leave as it was). */
function storeState(): string {
  const list = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort().join(",") : "");
  const images = path.join(box.root, "images.json");
  return [
    list(path.join(box.root, "layers")),
    list(path.join(box.root, "blobs", "sha256")),
    existsSync(images) ? readFileSync(images, "utf8") : "",
  ].join("\n");
}

let counter = 0;
/** Unpacks the archive one way; `image` (with `dir`, where ADD put it) when the result can run busybox. */
type Way = (tarBytes: Buffer, tag: string) => Promise<Result & { image?: string; dir?: string }>;

const WAYS: Record<string, Way> = {
  "a pulled layer": async (tarBytes, tag) => {
    const layout = await writeHostileLayout(path.join(work, tag), { layers: [base, tarBytes] });
    const ref = await pushHostile(layout, `hostile/${tag}`);
    return { ...(await box.run(["pull", "-q", ref])), image: ref, dir: "" };
  },
  load: async (tarBytes, tag) => {
    const layout = await writeHostileLayout(path.join(work, tag), { layers: [base, tarBytes] });
    const archive = path.join(work, `${tag}.tar`);
    writeFileSync(archive, await layoutArchive(layout));
    return box.run(["load", "-i", archive]);
  },
  import: async (tarBytes, tag) => {
    const file = path.join(work, `${tag}.tar`);
    writeFileSync(file, tarBytes);
    return box.run(["import", file, `hostile/${tag}`]);
  },
  "a build's ADD archive.tar /dir/": async (tarBytes, tag) => {
    const ctx = path.join(work, tag);
    mkdirSync(ctx, { recursive: true });
    writeFileSync(path.join(ctx, "archive.tar"), tarBytes);
    writeFileSync(path.join(ctx, "Dockerfile"), `FROM ${BASE}\nADD archive.tar /dir/\n`);
    const r = await box.run(["build", "-q", "-t", `hostile/${tag}`, ctx]);
    return { ...r, image: `hostile/${tag}`, dir: "/dir" };
  },
};

describe.each(Object.entries(WAYS))(
  "CVE-2014-6407/CVE-2014-9356 tar escapes through %s",
  (_way, unpack) => {
    test.each(CASES)("$name", async (c) => {
      const tag = `case-${process.pid}-${counter++}`;
      const hostBefore = hostState();
      const storeBefore = storeState();
      // Each archive also carries an ordinary file, so "unpacked" can be told from "skipped".
      const tarBytes = await makeTar([...c.entries(), { name: "marker.txt", content: "ok\n" }]);
      const r = await unpack(tarBytes, tag);
      if (c.expect === "refused") {
        expect(r.code, r.stdout).not.toBe(0);
        oneLineError(r);
        expect(storeState()).toBe(storeBefore);
      } else {
        expect(r.code, r.stderr).toBe(0);
      }
      expect(hostState()).toBe(hostBefore);
      expect(existsSync(path.join(hostDir, "dotdot.txt"))).toBe(false);
      expect(existsSync(path.join(hostDir, "absolute.txt"))).toBe(false);
      expect(existsSync(path.join(hostDir, "through.txt"))).toBe(false);
    });
  },
);
