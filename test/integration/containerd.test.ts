// containerd 1.6 (Debian's) driving an OCI runtime through its runc.v2 shim,
// as a Kubernetes node does: `ctr run --runc-binary RUNTIME`, foreground and
// detached, `ctr task exec/kill/delete`. RUNTIME is ./minibox-runc; with
// MINIBOX_CTR_RUNTIME=/usr/sbin/runc the same tests check the harness itself.
//
// Every runtime call goes through an argv logger (test/support/containerd.ts)
// so a test can see that the binary it named was really the one called (ctr
// silently ignores some ways of naming it, see docs/oci-runtime.md).
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  CONTAINERD,
  type Containerd,
  containerdConfig,
  exec,
  startContainerd,
  writeArgvLogger,
  writeBusyboxArchive,
} from "../support/containerd.js";
import { REPO_ROOT } from "../support/minibox.js";
import { sleep } from "../support/util.js";

const RUNTIME = process.env.MINIBOX_CTR_RUNTIME ?? path.join(REPO_ROOT, "minibox-runc");
const IMAGE = "minibox.test/busybox:latest";
const SHIM = "io.containerd.runc.v2";

let ctrd: Containerd;
/** The argv logger ctr is given as --runc-binary, and its log. */
let logger: string;
let argvLog: string;
/** /run/containerd: the runc.v2 shim of 1.6 puts its sockets in /run/containerd/s whatever the config says. */
const RUN_CONTAINERD = "/run/containerd";
const hadRunContainerd = existsSync(RUN_CONTAINERD);

beforeAll(async () => {
  ctrd = await startContainerd();
  logger = path.join(ctrd.dir, "runtime-logger");
  argvLog = path.join(ctrd.dir, "runtime-argv.log");
  await writeArgvLogger(logger, RUNTIME, argvLog);
  const archive = path.join(ctrd.dir, "busybox.tar");
  await writeBusyboxArchive(archive, IMAGE);
  const r = await ctrd.ctr(["image", "import", archive]);
  expect(r.code, r.stderr).toBe(0);
});

afterAll(async () => {
  if (!ctrd) return;
  await ctrd.stop();
  expect(ctrd.leftovers()).toEqual([]);
  // Only what this file made: the shim's socket dir, if /run/containerd was not there before
  // (rmdir: a socket still in it would mean a shim still running, which must show).
  if (!hadRunContainerd) {
    for (const sub of ["s", "fifo", "runc"]) rmEmptyDir(path.join(RUN_CONTAINERD, sub));
    rmEmptyDir(RUN_CONTAINERD);
  }
});

function rmEmptyDir(dir: string): void {
  if (existsSync(dir)) rmdirSync(dir);
}

/** The runtime calls logged since the last call (kept in MINIBOX_CTR_ARGV_LOG too, when set). */
function takeLog(): string {
  const text = existsSync(argvLog) ? readFileSync(argvLog, "utf8") : "";
  writeFileSync(argvLog, "");
  const keep = process.env.MINIBOX_CTR_ARGV_LOG;
  if (keep && text) appendFileSync(keep, text);
  return text;
}

/** `ctr run` options naming the runtime, its root and the cgroup of task ID. */
function runFlags(id: string): string[] {
  return [
    "--runtime",
    SHIM,
    "--runc-binary",
    logger,
    "--runc-root",
    ctrd.runcRoot,
    "--cgroup",
    ctrd.cgroup(id),
    ...fifo(),
  ];
}

/** ctr's FIFOs in the test's dir (its default is /run/containerd/fifo). */
function fifo(): string[] {
  return ["--fifo-dir", path.join(ctrd.dir, "fifo")];
}

/** The row of `ctr task ls` for ID: [TASK, PID, STATUS] ([] when there is no such task). */
async function taskRow(id: string): Promise<string[]> {
  const r = await ctrd.ctr(["task", "ls"]);
  const row = r.stdout.split("\n").find((l) => l.split(/\s+/)[0] === id);
  return row?.trim().split(/\s+/) ?? [];
}

async function taskStatus(id: string): Promise<string> {
  return (await taskRow(id))[2] ?? "";
}

/** Poll until the task reaches STATUS (the shim reports the exit asynchronously). */
async function waitForStatus(id: string, status: string): Promise<string> {
  let seen = "";
  for (let i = 0; i < 200; i++) {
    seen = await taskStatus(id);
    if (seen === status) break;
    await sleep(50);
  }
  return seen;
}

describe(`containerd 1.6 + runc.v2 shim with --runc-binary ${RUNTIME}`, () => {
  test("ctr run --rm … echo hi prints hi and exits 0, through the named runtime", async () => {
    takeLog();
    const r = await ctrd.ctr(["run", "--rm", ...runFlags("fg"), IMAGE, "fg", "echo", "hi"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("hi\n");
    expect(r.code).toBe(0);
    const log = takeLog();
    expect(log).toMatch(/ create --bundle \S+ --pid-file \S+ fg\n/);
    expect(log).toMatch(/ start fg\n/);
    expect(log).toMatch(/ delete fg\n/);
  });

  test("the exit status of the container's process is ctr's (sh -c 'exit 3')", async () => {
    const r = await ctrd.ctr(["run", "--rm", ...runFlags("st"), IMAGE, "st", "sh", "-c", "exit 3"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(3);
  });

  test("detached: run -d, task ls RUNNING, task exec, kill -s SIGKILL, STOPPED, task delete, container delete", async () => {
    const id = "bg";
    const run = await ctrd.ctr(["run", "-d", ...runFlags(id), IMAGE, id, "sleep", "60"]);
    expect(run.code, run.stderr).toBe(0);
    const [, pid, status] = await taskRow(id);
    expect(status).toBe("RUNNING");
    // The runtime honoured the spec's cgroupsPath (ctr --cgroup): the memory
    // controller's line (cgroup v1) or the unified one (v2 only) says so.
    const cgroups = readFileSync(`/proc/${pid}/cgroup`, "utf8");
    expect(cgroups).toMatch(new RegExp(`^\\d+:(memory)?:${ctrd.cgroup(id)}$`, "m"));

    takeLog();
    const inside = await ctrd.ctr(["task", "exec", "--exec-id", "e1", ...fifo(), id, "echo", "in"]);
    expect(inside.stderr).toBe("");
    expect(inside.stdout).toBe("in\n");
    expect(inside.code).toBe(0);
    expect(takeLog()).toMatch(/ exec --process \S+ --detach --pid-file \S+ bg\n/);
    // In the container's filesystem, not the host's: the image's os-release.
    const osRelease = await ctrd.ctr([
      "task",
      "exec",
      "--exec-id",
      "e2",
      ...fifo(),
      id,
      "cat",
      "/etc/os-release",
    ]);
    expect(osRelease.stdout).toContain('NAME="minibox busybox"');

    const kill = await ctrd.ctr(["task", "kill", "-s", "SIGKILL", id]);
    expect(kill.code, kill.stderr).toBe(0);
    expect(await waitForStatus(id, "STOPPED")).toBe("STOPPED");

    const del = await ctrd.ctr(["task", "delete", id]);
    expect(del.code, del.stderr).toBe(0);
    expect(await taskStatus(id)).toBe("");
    const rmc = await ctrd.ctr(["container", "delete", id]);
    expect(rmc.code, rmc.stderr).toBe(0);
    expect((await ctrd.ctr(["container", "ls", "-q"])).stdout).not.toContain(id);
  });
});

describe(`containerd drives pause, resume and ps through ${RUNTIME}`, () => {
  test("task pause → PAUSED, resume → RUNNING, task ps lists the init (ctr 1.6 has no task update)", async () => {
    const id = "pr";
    const run = await ctrd.ctr(["run", "-d", ...runFlags(id), IMAGE, id, "sleep", "60"]);
    expect(run.code, run.stderr).toBe(0);
    const [, pid] = await taskRow(id);
    takeLog();
    const pause = await ctrd.ctr(["task", "pause", id]);
    expect(pause.code, pause.stderr).toBe(0);
    expect(await taskStatus(id)).toBe("PAUSED");
    const resume = await ctrd.ctr(["task", "resume", id]);
    expect(resume.code, resume.stderr).toBe(0);
    expect(await taskStatus(id)).toBe("RUNNING");
    // The shim parses `ps --format json`'s array. (`update --resources -` is
    // the shim's too, but ctr 1.6 has no `task update`: runc-verbs.test.ts
    // feeds it stdin as the shim does.)
    const ps = await ctrd.ctr(["task", "ps", id]);
    expect(ps.code, ps.stderr).toBe(0);
    expect(ps.stdout.split("\n").map((l) => l.trim().split(/\s+/)[0])).toContain(pid);
    const log = takeLog();
    expect(log).toMatch(/ pause pr\n/);
    expect(log).toMatch(/ resume pr\n/);
    expect(log).toMatch(/ ps --format json pr\n/);

    expect((await ctrd.ctr(["task", "kill", "-s", "SIGKILL", id])).code).toBe(0);
    expect(await waitForStatus(id, "STOPPED")).toBe("STOPPED");
    expect((await ctrd.ctr(["task", "delete", id])).code).toBe(0);
    expect((await ctrd.ctr(["container", "delete", id])).code).toBe(0);
  });
});

describe("the Kubernetes form: a CRI runtime handler `minibox` with BinaryName", () => {
  // ctr cannot select a CRI handler (those are read by the CRI plugin only, for
  // RuntimeClass). What the handler gives the runc.v2 shim is the same
  // options message ctr's --runc-binary builds (runc.v2's Options.BinaryName,
  // Options.Root), so the ctr tests above are the handler's path; here the
  // config.toml snippet of docs/oci-runtime.md is checked to be one
  // containerd 1.6 reads as that handler.
  test("containerd reads the docs' handler `minibox`: runtime_type runc.v2, BinaryName minibox-runc", async () => {
    const docs = readFileSync(path.join(REPO_ROOT, "docs", "oci-runtime.md"), "utf8");
    const snippet = /```toml\n([^`]*runtimes\.minibox[^`]*)```/.exec(docs)?.[1];
    expect(snippet, "the toml block of docs/oci-runtime.md").toBeDefined();
    const dir = mkdtempSync(path.join(tmpdir(), "minibox-ctrd-cri-"));
    try {
      const file = path.join(dir, "config.toml");
      writeFileSync(
        file,
        `${containerdConfig(dir).replace(/^disabled_plugins = .*$/m, "")}\n${snippet}`,
      );
      const r = await exec(CONTAINERD, ["--config", file, "config", "dump"]);
      expect(r.code, r.stderr).toBe(0);
      // The dump prints every plugin's settings; the handler's table runs to the next one.
      const handler = r.stdout
        .split('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.minibox]')[1]
        ?.split(
          /\n\s*\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.(?!runtimes\.minibox\.)/,
        )[0];
      expect(handler, r.stdout).toBeDefined();
      expect(handler).toMatch(/\bruntime_type = "io\.containerd\.runc\.v2"/);
      expect(handler).toMatch(/\bBinaryName = "\/\S+\/minibox-runc"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("ctr's --runtime-config-path is not a way to name the binary for runc.v2 (ignored: the default runc runs)", async () => {
    const opts = path.join(ctrd.dir, "runc-options.toml");
    writeFileSync(opts, `BinaryName = "${logger}"\nRoot = "${ctrd.runcRoot}"\n`);
    takeLog();
    const flags = runFlags("cfg").filter(
      (_, i, all) => all[i] !== "--runc-binary" && all[i - 1] !== "--runc-binary",
    );
    const r = await ctrd.ctr([
      "run",
      "--rm",
      ...flags,
      "--runtime-config-path",
      opts,
      IMAGE,
      "cfg",
      "echo",
      "hi",
    ]);
    // runc from PATH ran it: the logger (BinaryName) was never called.
    expect(r.stdout).toBe("hi\n");
    expect(takeLog()).toBe("");
  });
});
