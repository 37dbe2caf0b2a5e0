// The native executor has no fixed caps: 10,000 arguments, 5,000 environment
// variables and 100+ supplementary groups reach the container intact. And it
// refuses a malformed plan (an unknown op, a wrong field count) before any
// step runs, naming the step's line.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Readable, Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { REPO_ROOT, type Sandbox, sandbox } from "../support/minibox.js";
import { testEnv } from "../support/testenv.js";

const env = testEnv();
const IMAGE = `${env.registries.anon}/fixtures/base`;
const EXECUTOR = path.join(REPO_ROOT, "native", "build", "minibox-exec");

let box: Sandbox;
let dir: string;
beforeAll(async () => {
  box = sandbox();
  dir = mkdtempSync(path.join(tmpdir(), "minibox-limits-"));
  const r = await box.run(["pull", "-q", IMAGE]);
  expect(r.code, r.stderr).toBe(0);
});
afterAll(() => {
  box.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

interface ExecutorRun {
  code: number | null;
  status: string[];
  stdout: string;
}

/** Feed `plan` to the executor the way src/runtime/executor.ts does: 3 plan, 4 status, 5 control. */
function runExecutor(plan: string): Promise<ExecutorRun> {
  const child = spawn(EXECUTOR, [], {
    stdio: ["ignore", "pipe", "ignore", "pipe", "pipe", "pipe"],
  });
  let status = "";
  let stdout = "";
  (child.stdio[4] as Readable).on("data", (d) => {
    status += d;
  });
  child.stdout?.on("data", (d) => {
    stdout += d;
  });
  const pipes = child.stdio as unknown as (Readable | Writable)[];
  (pipes[3] as Writable).end(plan);
  (pipes[5] as Writable).end();
  return new Promise((resolve) => {
    child.on("close", (code) => resolve({ code, status: status.trimEnd().split("\n"), stdout }));
  });
}

describe("the executor refuses a malformed plan before running anything", () => {
  // If any step ran, this file would exist afterwards.
  const marker = () => path.join(dir, "ran");

  test("a step with too few fields: its line, its op, exit 125", async () => {
    const plan = `[setup]\nmkdir\t${marker()}\t0755\nmount\tnone\t/x\n[child]\nexec\t/bin/true\n[parent]\n`;
    const r = await runExecutor(plan);
    expect(r.code).toBe(125);
    expect(r.status).toEqual(["error 3 mount plan 22 mount takes 5 fields, got 2"]);
    expect(() => rmSync(marker())).toThrow();
  });

  test("a wrong count in a later section is refused before the first setup step", async () => {
    const plan = `[setup]\nmkdir\t${marker()}\t0755\nclone\t0\n[child]\nmkdir\t/tmp/x\t0755\t0\nexec\t/bin/true\n[parent]\n`;
    const r = await runExecutor(plan);
    expect(r.code).toBe(125);
    expect(r.status).toEqual(["error 5 mkdir plan 22 mkdir takes 2 or 4 fields, got 3"]);
    expect(() => rmSync(marker())).toThrow();
  });

  test("an unknown op", async () => {
    const r = await runExecutor(
      "[setup]\nclone\t0\n[child]\nfrobnicate\t1\nexec\t/bin/true\n[parent]\n",
    );
    expect(r.code).toBe(125);
    expect(r.status).toEqual(["error 4 frobnicate plan 22 unknown op frobnicate"]);
  });

  test("an exec without a program", async () => {
    const r = await runExecutor("[setup]\nclone\t0\n[child]\nexec\n[parent]\n");
    expect(r.code).toBe(125);
    expect(r.status).toEqual(["error 4 exec plan 22 exec takes at least 1 field, got 0"]);
  });

  test("more than 256 fields in one step all reach execve", async () => {
    const args = Array.from({ length: 300 }, (_, i) => `a${i}`);
    const r = await runExecutor(
      `[setup]\nclone\t0\n[child]\nexec\t/bin/echo\t${args.join("\t")}\n[parent]\n`,
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${args.join(" ")}\n`);
  });
});

describe("no fixed caps in a container", () => {
  test("echo with 10,000 arguments prints them all, in order", async () => {
    const args = Array.from({ length: 10_000 }, (_, i) => `arg${i}`);
    const r = await box.run(["run", "--rm", IMAGE, "echo", ...args]);
    expect(r.code, r.stderr).toBe(0);
    const words = r.stdout.trimEnd().split(" ");
    expect(words.length).toBe(10_000);
    expect(words).toEqual(args);
  });

  test("env with 5,000 variables sees every one", async () => {
    const vars = Array.from({ length: 5_000 }, (_, i) => `VAR_${i}=value-${i}`);
    const flags = vars.flatMap((v) => ["-e", v]);
    const r = await box.run(["run", "--rm", ...flags, IMAGE, "env"]);
    expect(r.code, r.stderr).toBe(0);
    const seen = new Set(r.stdout.trimEnd().split("\n"));
    const missing = vars.filter((v) => !seen.has(v));
    expect(missing).toEqual([]);
  });

  test("a user in 120 groups of the image's /etc/group gets all of them", async () => {
    const gids = Array.from({ length: 120 }, (_, i) => 2000 + i);
    const ctx = path.join(dir, "groups");
    mkdirSync(ctx, { recursive: true });
    writeFileSync(
      path.join(ctx, "passwd"),
      "root:x:0:0:root:/root:/bin/sh\nmany:x:1000:1000:many:/:/bin/sh\n",
    );
    writeFileSync(
      path.join(ctx, "group"),
      ["root:x:0:", "many:x:1000:", ...gids.map((g) => `g${g}:x:${g}:root,many`)]
        .map((line) => `${line}\n`)
        .join(""),
    );
    writeFileSync(path.join(ctx, "Dockerfile"), `FROM ${IMAGE}\nCOPY passwd group /etc/\n`);
    const built = await box.run(["build", "-t", "many-groups", ctx]);
    expect(built.code, built.stderr).toBe(0);
    const r = await box.run(["run", "--rm", "-u", "many", "many-groups", "id", "-G"]);
    expect(r.code, r.stderr).toBe(0);
    const printed = r.stdout.trim().split(/\s+/).map(Number);
    expect(new Set(printed)).toEqual(new Set([1000, ...gids]));
  });
});
