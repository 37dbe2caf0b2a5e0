// The build context: .dockerignore filtering, COPY source matching, the size line.
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import {
  type ContextFile,
  contextTarSize,
  matchSources,
  parseDockerignore,
  readContext,
  resolveSources,
  sendingContextMessage,
} from "../../src/build/context.js";
import { MiniboxError } from "../../src/errors.js";

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "minibox-ctx-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function tree(files: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), content);
  }
}

const paths = (files: ContextFile[]) => files.map((f) => f.path);

describe("readContext", () => {
  test(".dockerignore patterns, exceptions, ** and directories", async () => {
    await tree({
      Dockerfile: "FROM scratch\n",
      ".dockerignore": "# secrets\n*.secret\n!keep.secret\n**/node_modules\ntmp/\n",
      "a.secret": "s",
      "keep.secret": "k",
      "sub/b.secret": "not at the root: kept",
      "node_modules/x/index.js": "x",
      "app/node_modules/y.js": "y",
      "app/main.js": "main",
      "tmp/junk": "j",
      tmpfile: "t",
    });
    const { files, totalBytes } = await readContext(dir, "Dockerfile");
    expect(paths(files)).toEqual([
      ".dockerignore",
      "Dockerfile",
      "app",
      "app/main.js",
      "keep.secret",
      "sub",
      "sub/b.secret",
      "tmpfile",
    ]);
    expect(totalBytes).toBe(files.reduce((n, f) => n + f.size, 0));
    const main = files.find((f) => f.path === "app/main.js");
    expect(main).toMatchObject({ type: "file", size: 4 });
    expect(files.find((f) => f.path === "app")).toMatchObject({ type: "dir", size: 0 });
  });

  test("the Dockerfile and .dockerignore are sent even when ignored", async () => {
    await tree({
      ".dockerignore": ".dockerignore\nDockerfile*\nbuild/\n",
      Dockerfile: "FROM a\n",
      "build/Dockerfile.prod": "FROM b\n",
      "build/other": "o",
      "src/x": "x",
    });
    const { files } = await readContext(dir, path.join(dir, "build/Dockerfile.prod"));
    expect(paths(files)).toEqual([
      ".dockerignore",
      "build",
      "build/Dockerfile.prod",
      "src",
      "src/x",
    ]);
  });

  test("an exception brings back a file under an excluded directory", async () => {
    await tree({
      ".dockerignore": "docs\n!docs/README.md\n",
      Dockerfile: "FROM a",
      "docs/README.md": "r",
      "docs/other.md": "o",
    });
    const { files } = await readContext(dir, "Dockerfile");
    expect(paths(files)).toEqual([".dockerignore", "Dockerfile", "docs", "docs/README.md"]);
  });

  test("no .dockerignore: everything, symlinks not followed, modes kept", async () => {
    await tree({ Dockerfile: "FROM a", "bin/run": "#!/bin/sh\n" });
    await import("node:fs/promises").then((fs) => fs.chmod(path.join(dir, "bin/run"), 0o755));
    await symlink("bin/run", path.join(dir, "link"));
    const { files } = await readContext(dir, "Dockerfile");
    expect(paths(files)).toEqual(["Dockerfile", "bin", "bin/run", "link"]);
    expect(files[2].mode).toBe(0o755);
    expect(files[3]).toMatchObject({ type: "symlink", linkTarget: "bin/run", size: 0 });
  });
});

describe("parseDockerignore", () => {
  test("comments, blanks, cleaning, leading slash, exceptions", () => {
    expect(parseDockerignore("# c\n\n  /abs/ \n!  ./x/../keep\n**/*.log\n")).toEqual([
      "abs",
      "!keep",
      "**/*.log",
    ]);
  });
});

describe("matchSources", () => {
  const f = (p: string, type: ContextFile["type"] = "file"): ContextFile => ({
    path: p,
    size: type === "file" ? 1 : 0,
    mode: 0o644,
    type,
  });
  const files = [
    f("Dockerfile"),
    f("a.txt"),
    f("b.txt"),
    f("c.md"),
    f("src", "dir"),
    f("src/x.ts"),
    f("src/lib", "dir"),
    f("src/lib/y.ts"),
    f("src/z.txt"),
    f("empty", "dir"),
  ];

  test.each<[string, string[]]>([
    ["a.txt", ["a.txt"]],
    ["./a.txt", ["a.txt"]],
    ["/a.txt", ["a.txt"]],
    ["*.txt", ["a.txt", "b.txt"]],
    ["?.md", ["c.md"]],
    ["[ab].txt", ["a.txt", "b.txt"]],
    ["[^a].txt", ["b.txt"]],
    ["[a-b].*", ["a.txt", "b.txt"]],
    ["src/*.txt", ["src/z.txt"]],
    ["*/*.ts", ["src/x.ts"]], // * does not cross "/"
    ["src", ["src/x.ts", "src/lib", "src/lib/y.ts", "src/z.txt"]],
    ["src/", ["src/x.ts", "src/lib", "src/lib/y.ts", "src/z.txt"]],
    ["src/lib/../lib", ["src/lib/y.ts"]],
    ["empty", []],
  ])("%s", (source, want) => {
    expect(paths(matchSources(files, source))).toEqual(want);
  });

  test("the whole context with .", () => {
    expect(matchSources(files, ".")).toHaveLength(files.length);
  });

  test("resolveSources says where each file lands", () => {
    expect(resolveSources(files, "src/lib").map((m) => [m.file.path, m.rel])).toEqual([
      ["src/lib", ""],
      ["src/lib/y.ts", "y.ts"],
    ]);
    expect(resolveSources(files, "src/*.txt").map((m) => m.rel)).toEqual(["z.txt"]);
  });

  test("nothing matching is an error naming the source", () => {
    expect(() => matchSources(files, "missing.txt")).toThrow(
      new MiniboxError(
        "COPY failed: file not found in build context or excluded by .dockerignore: stat missing.txt: file does not exist",
      ),
    );
    expect(() => matchSources(files, "*.go")).toThrow(/stat \*\.go: file does not exist/);
  });

  test.each(["../x", "..", "src/../../etc/passwd"])("%s is outside the context", (source) => {
    expect(() => matchSources(files, source)).toThrow(
      `COPY failed: forbidden path outside the build context: ${source}`,
    );
  });
});

describe("context size", () => {
  test("as Docker prints it: tar size, decimal units, 4 significant digits", async () => {
    await tree({ Dockerfile: "FROM scratch\n" });
    const { files } = await readContext(dir, "Dockerfile");
    expect(contextTarSize(files)).toBe(2048);
    expect(sendingContextMessage(files)).toBe("Sending build context to minibox  2.048kB");
    await tree({ "data.bin": "x".repeat(600) });
    const again = await readContext(dir, "Dockerfile");
    expect(sendingContextMessage(again.files)).toBe("Sending build context to minibox  3.584kB");
  });
});
