// biome-ignore-all lint/suspicious/noTemplateCurlyInString: TypeScript source text, not templates
// src/layout.ts names every path under <root>: no other module may join a
// root (or a container's directory) with a literal folder or file name. This
// reads the sources, so a path spelled out anywhere else fails here, by file and line.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { containerPaths, layerPaths, rootLayout } from "../../src/layout.js";

const SRC = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "src");

/** What sits directly under <root>. */
const ROOT_NAMES = [
  "images.json",
  "blob-sources.json",
  "build-cache.json",
  "userns.json",
  "host-sysctls.json",
  "blobs",
  "layers",
  "layers-shifted",
  "tmp",
  "locks",
  "names",
  "containers",
  "volumes",
  "config.json",
  "networks",
  "events.jsonl",
  "events.jsonl.1",
];

/** What sits in a container's directory. */
const CONTAINER_NAMES = [
  "config.json",
  "state.json",
  "exit.json",
  "plan.txt",
  "exec-plan.txt",
  "upper",
  "work",
  "rootfs",
  "lower",
  "hostname",
  "hosts",
  "resolv.conf",
];

/** A regex alternation, longest first so "layers-shifted" is not read as "layers". */
const alternatives = (names: string[]) =>
  [...names]
    .sort((a, b) => b.length - a.length)
    .map((n) => n.replace(/[.]/g, "\\."))
    .join("|");
const ROOT = alternatives(ROOT_NAMES);
const CONTAINER = alternatives(CONTAINER_NAMES);

/** Ways to spell a path under a root, or under a container's directory, by hand. */
const SPELLED_OUT: RegExp[] = [
  // join(root, "locks"), join(store.root, "names", name), path.join(ctx.store.root, "tmp")
  new RegExp(`join\\([^)]*\\broot\\b[^)]*?,\\s*["'\`](${ROOT})\\b`, "g"),
  // `${root}/locks/...`, `${store.root}/containers`
  new RegExp(`\\$\\{[^}]*\\broot\\}/(${ROOT})\\b`, "g"),
  // join(paths.dir, "state.json"), join(dir, id, "config.json") under a containers folder
  new RegExp(`join\\([^)]*\\.dir\\b[^)]*?,\\s*["'\`](${CONTAINER})["'\`]`, "g"),
  // `${containerPaths(root, id).dir}/exec-plan.txt`
  new RegExp(`\\$\\{[^}]*\\.dir\\}/(${CONTAINER})\\b`, "g"),
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith(".ts") ? [path] : [];
  });
}

/** "file:line: text" for each path spelled out in `text`. */
function spelledOut(file: string, text: string): string[] {
  const found: string[] = [];
  for (const re of SPELLED_OUT) {
    for (const m of text.matchAll(re)) {
      const line = text.slice(0, m.index).split("\n").length;
      found.push(`${file}:${line}: ${m[0].replace(/\s+/g, " ")}`);
    }
  }
  return found;
}

describe("one layout module", () => {
  test("the detector finds paths spelled out by hand, and not the layout's own", () => {
    const bad = [
      'await mkdir(join(root, "names"), { recursive: true });',
      'const file = join(store.root, "build-cache.json");',
      'const dir = join(ctx.store.root, "layers-shifted", String(uid), hex);',
      "return `${root}/locks/container-${id}.lock`;",
      "const tmp = join(\n    store.root,\n    `build-cache.json.tmp-${process.pid}`,\n  );",
      "planFile: `${containerPaths(root, c.id).dir}/exec-plan.txt`,",
    ];
    for (const text of bad) expect(spelledOut("x.ts", text), text).toHaveLength(1);
    const good = [
      "await mkdir(rootLayout(root).names, { recursive: true });",
      "const file = containerPaths(root, id).state;",
      'patterns = parseDockerignore(await readFile(path.join(root, ".dockerignore"), "utf8"));',
      '`${path.join(root, "cgroup.controllers")} lists only: ${available}`',
      " * A name is claimed by creating <root>/names/<name> with O_EXCL",
      "return rel === '' ? this.root : `${this.root}/${rel}`;",
    ];
    for (const text of good) expect(spelledOut("x.ts", text), text).toEqual([]);
  });

  test("no module but src/layout.ts joins <root> with a literal folder name", () => {
    const offenders = sourceFiles(SRC)
      .filter((f) => relative(SRC, f) !== "layout.ts")
      .flatMap((f) => spelledOut(relative(join(SRC, ".."), f), readFileSync(f, "utf8")));
    expect(offenders).toEqual([]);
  });

  test("the layout's paths are the on-disk names minibox has always used", () => {
    const root = rootLayout("/r");
    expect(root.images).toBe("/r/images.json");
    expect(root.blobs).toBe("/r/blobs/sha256");
    expect(root.lock("container-abc")).toBe("/r/locks/container-abc.lock");
    expect(root.lock("volume-v")).toBe("/r/locks/volume-v.lock");
    expect(root.name("web")).toBe("/r/names/web");
    expect(root.layersShifted).toBe("/r/layers-shifted");
    expect(root.hostSysctls).toBe("/r/host-sysctls.json");
    const c = containerPaths("/r", "abc");
    expect(c.root).toBe("/r");
    expect(c.state).toBe("/r/containers/abc/state.json");
    expect(c.log).toBe("/r/containers/abc/abc-json.log");
    expect(layerPaths("/r/layers/h")).toEqual({
      dir: "/r/layers/h",
      diff: "/r/layers/h/diff",
      record: "/r/layers/h/layer.json",
    });
  });
});
