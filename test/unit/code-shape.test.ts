// The shape the code keeps, measured rather than hoped for: small functions
// in the runtime, build and image code; the CLI only parses and prints, so
// nothing below it imports from it.
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs script without type declarations
import { longFunctions } from "../../scripts/function-lengths.mjs";

const SRC = path.resolve(__dirname, "..", "..", "src");

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return tsFiles(full);
    return full.endsWith(".ts") ? [full] : [];
  });
}

describe("code shape", () => {
  it("no function in src/runtime, src/build or src/image is longer than 80 lines", () => {
    const dirs = ["runtime", "build", "image"].map((d) => path.join(SRC, d));
    const long = (longFunctions(dirs, 80) as { file: string; line: number; name: string }[]).map(
      (f) => `${path.relative(SRC, f.file)}:${f.line} ${f.name}`,
    );
    expect(long).toEqual([]);
  });

  it("no function in src/cli is longer than 60 lines (one small function per command)", () => {
    const long = (
      longFunctions([path.join(SRC, "cli")], 60) as { file: string; line: number; name: string }[]
    ).map((f) => `${path.relative(SRC, f.file)}:${f.line} ${f.name}`);
    expect(long).toEqual([]);
  });

  it("build, runtime and image code never import from the CLI", () => {
    const offenders = ["runtime", "build", "image"]
      .flatMap((d) => tsFiles(path.join(SRC, d)))
      .filter((file) => /from "(\.\.\/)+cli\//.test(readFileSync(file, "utf8")))
      .map((file) => path.relative(SRC, file));
    expect(offenders).toEqual([]);
  });
});
