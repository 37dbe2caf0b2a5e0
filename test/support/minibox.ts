// Run the real minibox CLI (dist/, built by `npm run build`) the way a user
// does, each test with its own state root and config directory.
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
/** The bundled CLI, as the `minibox` launcher and the package's bin run it. */
export const MINIBOX_JS = path.join(REPO_ROOT, "dist", "minibox.mjs");

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Sandbox {
  root: string;
  config: string;
  /** Run `minibox ARGS` with this sandbox's --root and --config. */
  run(args: string[], opts?: { env?: NodeJS.ProcessEnv; input?: string }): Promise<Result>;
  /** Start without waiting (for kill and concurrency tests). */
  spawn(
    args: string[],
    opts?: { env?: NodeJS.ProcessEnv },
  ): { child: ChildProcess; done: Promise<Result> };
  cleanup(): void;
}

/**
 * Whether a store is one of the tests' sandboxes: networks are the host's
 * (shared by every --root), so a test checking "no lease left" looks at the
 * leases of test stores only, not at those of a minibox that runs beside it.
 */
export function isTestStore(root: string): boolean {
  return root.startsWith(path.join(tmpdir(), "minibox-"));
}

export function sandbox(prefix = "minibox-test-"): Sandbox {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  // Like /var/lib: enterable by others, so a container's (unprivileged) root can reach its rootfs.
  chmodSync(dir, 0o711);
  const root = path.join(dir, "root");
  const config = path.join(dir, "config");
  const start = (args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}) => {
    const child = spawn(
      process.execPath,
      [MINIBOX_JS, "--root", root, "--config", config, ...args],
      {
        env: { ...process.env, MINIBOX_USERNAME: "", MINIBOX_PASSWORD: "", ...opts.env },
        stdio: ["pipe", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d) => {
      stdout += d;
    });
    child.stderr?.on("data", (d) => {
      stderr += d;
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
    const done = new Promise<Result>((resolve) => {
      child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
    });
    return { child, done };
  };
  return {
    root,
    config,
    run: (args, opts) => start(args, opts).done,
    spawn: (args, opts) => start(args, opts),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The error contract: one line on stderr, prefixed, no stack trace. */
export function oneLineError(result: Result): string {
  const lines = result.stderr.trimEnd().split("\n");
  if (lines.length !== 1 || !lines[0]?.startsWith("minibox: ") || /\n\s+at /.test(result.stderr)) {
    throw new Error(`expected one error line, got:\n${result.stderr}`);
  }
  return lines[0];
}

/** Pull each image into the sandbox (a test file's beforeAll); throws with minibox's stderr if one fails. */
export async function pullInto(box: Sandbox, ...images: string[]): Promise<void> {
  for (const image of images) {
    const r = await box.run(["pull", "-q", image]);
    if (r.code !== 0) throw new Error(`pull ${image}: ${r.stderr}`);
  }
}

/** Remove every container of the sandbox, whatever failed before (a test file's afterAll). */
export async function removeContainers(box: Sandbox): Promise<void> {
  const ids = (await box.run(["ps", "-aq", "--no-trunc"])).stdout
    .trim()
    .split("\n")
    .filter(Boolean);
  if (ids.length) await box.run(["rm", "-f", ...ids]);
}
