// What the minibox-runc integration tests share: a work directory with a
// --root under it, one call of ./minibox-runc with its output in files, a
// busybox-static bundle from `spec`, and a few readers of the results.
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  closeSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "vitest";
import { REPO_ROOT } from "./minibox.js";

/** config.json as the tests edit it: any shape, on purpose (bad input included). */
// biome-ignore lint/suspicious/noExplicitAny: a config.json is edited freely here
export type Config = Record<string, any>;

export const MINIBOX_RUNC = path.join(REPO_ROOT, "minibox-runc");

/** The applets linked into each bundle's /bin (a test may add one before making its bundle). */
export const APPLETS = ["sh", "echo", "sleep", "cat", "id", "hostname", "touch", "ls", "grep"];

/** The message of runc's text log line on stderr (msg="…", quotes escaped as logrus does). */
export function errorOf(stderr: string): string {
  const m = /msg="((?:[^"\\]|\\.)*)"/.exec(stderr);
  return m ? (JSON.parse(`"${m[1]}"`) as string) : stderr;
}

export async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export interface RuncCall {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A temp work directory (prefix PREFIX) with the runtime's --root in it, and the calls on it. */
export function runcHarness(prefix: string, binary = MINIBOX_RUNC) {
  const work = mkdtempSync(path.join(tmpdir(), prefix));
  const root = path.join(work, "state");
  let calls = 0;

  /**
   * One call, its stdio in files: a created container's init inherits them
   * and holds them open (as it holds containerd's fifos), so pipes would
   * never reach EOF. `input`: a file for its stdin.
   */
  function runc(args: string[], cwd = work, input?: string): RuncCall {
    const out = path.join(work, `call-${++calls}.out`);
    const err = path.join(work, `call-${calls}.err`);
    const fds: Array<number | "ignore"> = [
      input ? openSync(input, "r") : "ignore",
      openSync(out, "w"),
      openSync(err, "w"),
    ];
    const r = spawnSync(binary, ["--root", root, ...args], { cwd, stdio: fds });
    for (const fd of fds) if (typeof fd === "number") closeSync(fd);
    return { code: r.status, stdout: readFileSync(out, "utf8"), stderr: readFileSync(err, "utf8") };
  }

  /**
   * Through ./minibox-runc with no node on PATH: only native/minibox-runc-fast
   * can answer (a hand-over to node fails, naming node).
   */
  function withoutNode(args: string[]): RuncCall {
    const r = spawnSync(MINIBOX_RUNC, ["--root", root, ...args], {
      encoding: "utf8",
      env: { PATH: "/nonexistent" },
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** A bundle: busybox-static as the rootfs, `runc spec`'s config changed by `edit`. */
  function bundle(name: string, edit: (c: Config) => void): string {
    const dir = path.join(work, name);
    mkdirSync(path.join(dir, "rootfs", "bin"), { recursive: true });
    mkdirSync(path.join(dir, "rootfs", "tmp"));
    chmodSync(path.join(dir, "rootfs", "tmp"), 0o1777);
    copyFileSync("/bin/busybox", path.join(dir, "rootfs", "bin", "busybox"));
    for (const a of APPLETS) symlinkSync("busybox", path.join(dir, "rootfs", "bin", a));
    expect(runc(["spec", "--bundle", dir]).code).toBe(0);
    const config = JSON.parse(readFileSync(path.join(dir, "config.json"), "utf8"));
    config.process.terminal = false;
    config.root.readonly = false;
    edit(config);
    writeFileSync(path.join(dir, "config.json"), JSON.stringify(config));
    return dir;
  }

  function state(id: string) {
    const r = runc(["state", id]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as { status: string; pid: number; id: string; bundle: string };
  }

  /** The record's cgroup directories (what delete must remove). */
  function cgroupDirs(id: string): string[] {
    return JSON.parse(readFileSync(path.join(root, id, "state.json"), "utf8")).cgroupDirs;
  }

  return { work, root, runc, withoutNode, bundle, state, cgroupDirs };
}
