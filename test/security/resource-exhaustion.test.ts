// Resource exhaustion, the denial-of-service half of issue 12: a container
// must not be able to take the host (or its neighbours) down with it. The
// attempts are the classic ones: a fork bomb under --pids-limit, a memory hog
// under -m, a process flooding stdout under --log-opt max-size; plus the exit
// statuses Docker gives for a command that cannot run (127, 126), which
// scripts rely on to tell "your command failed" from "it never started".
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Sandbox, sandbox } from "../support/minibox.js";
import { testEnv } from "../support/testenv.js";
import { pidAlive } from "../support/util.js";

const env = testEnv();
const IMAGE = `${env.registries.anon}/fixtures/base`;

let box: Sandbox;
beforeAll(async () => {
  box = sandbox();
  const r = await box.run(["pull", "-q", IMAGE]);
  expect(r.code, r.stderr).toBe(0);
});
afterAll(async () => {
  await box.run(["rm", "-f", "bomb", "neighbour", "flood"]);
  box.cleanup();
});

async function inspect(name: string) {
  const r = await box.run(["inspect", name]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as Array<{ Id: string; State: Record<string, unknown> }>)[0];
}

/** Host processes whose cgroup names the container: none may outlive it. */
function processesOf(id: string): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/cgroup`, "utf8").includes(id)) pids.push(Number(pid));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** The container's process count, as `stats` reads it from its cgroup. */
async function pidsOf(name: string): Promise<number> {
  const r = await box.run(["stats", "--no-stream", "--format", "json", name]);
  expect(r.code, r.stderr).toBe(0);
  return Number((JSON.parse(r.stdout) as { PIDs: string }).PIDs);
}

/** Polls (bounded by the test's timeout) until `check` holds. */
async function until(check: () => boolean | Promise<boolean>) {
  while (!(await check())) await new Promise((r) => setTimeout(r, 100));
}

describe("resource exhaustion", () => {
  test("a fork bomb under --pids-limit 50 leaves the host and a neighbour responsive, and stops cleanly", async () => {
    const n = await box.run(["run", "-d", "--name", "neighbour", IMAGE, "sleep", "1000"]);
    expect(n.code, n.stderr).toBe(0);
    // The classic bomb, in the background; `exec sleep` keeps the container
    // up whatever the bomb's forks meet.
    const bomb = "b() { b | b & }; b & exec sleep 1000";
    const b = await box.run([
      "run",
      "-d",
      "--name",
      "bomb",
      "--pids-limit",
      "50",
      IMAGE,
      "sh",
      "-c",
      bomb,
    ]);
    expect(b.code, b.stderr).toBe(0);
    const { Id: id, State } = await inspect("bomb");
    // The bomb has reached its ceiling: the cgroup refuses forks at 50.
    let peak = 0;
    await until(async () => {
      peak = Math.max(peak, await pidsOf("bomb"));
      return peak >= 45;
    });
    expect(peak).toBeLessThanOrEqual(50);
    // The host still forks, and the neighbour still answers exec.
    expect(spawnSync("true").status).toBe(0);
    const e = await box.run(["exec", "neighbour", "echo", "alive"]);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout.trim()).toBe("alive");
    const rm = await box.run(["rm", "-f", "bomb"]);
    expect(rm.code, rm.stderr).toBe(0);
    expect(processesOf(id)).toEqual([]);
    expect(pidAlive(State.Pid as number)).toBe(false);
    const rmN = await box.run(["rm", "-f", "neighbour"]);
    expect(rmN.code, rmN.stderr).toBe(0);
  });

  test("a memory hog under -m 32m is OOM-killed: run exits 137, inspect says OOMKilled", async () => {
    // sort reads its whole input into memory: 256 MB of one line.
    const r = await box.run([
      "run",
      "--name",
      "hog",
      "-m",
      "32m",
      IMAGE,
      "sh",
      "-c",
      "head -c 268435456 /dev/zero | sort > /dev/null",
    ]);
    expect(r.code, r.stderr).toBe(137);
    const state = (await inspect("hog")).State;
    expect(state.OOMKilled).toBe(true);
    expect(state.ExitCode).toBe(137);
    const rm = await box.run(["rm", "hog"]);
    expect(rm.code, rm.stderr).toBe(0);
  });

  test("a command that is not there exits 127, one that is not executable 126, as Docker", async () => {
    const missing = await box.run(["run", "--name", "missing", IMAGE, "no-such-command"]);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toContain("no-such-command");
    // inspect keeps the status the run exited with.
    expect((await inspect("missing")).State.ExitCode).toBe(127);
    expect((await box.run(["rm", "missing"])).code).toBe(0);
    const notExec = await box.run(["run", "--rm", IMAGE, "/etc/passwd"]);
    expect(notExec.code).toBe(126);
    expect(notExec.stderr).toContain("/etc/passwd");
  });

  test("a container flooding stdout with --log-opt max-size=1m max-file=2 keeps its logs under ~2 MB", async () => {
    const line = "x".repeat(200);
    const r = await box.run([
      "run",
      "-d",
      "--name",
      "flood",
      "--log-opt",
      "max-size=1m",
      "--log-opt",
      "max-file=2",
      IMAGE,
      "yes",
      line,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const id = (await inspect("flood")).Id;
    const dir = path.join(box.root, "containers", id);
    const logs = () => readdirSync(dir).filter((f) => f.includes("-json.log"));
    const rotated = path.join(dir, `${id}-json.log.1`);
    // Rotated at least three times: far more than 2 MB has been written.
    let rotations = 0;
    let lastIno = -1;
    await until(() => {
      if (!existsSync(rotated)) return false;
      const ino = statSync(rotated).ino;
      if (ino !== lastIno) {
        rotations++;
        lastIno = ino;
      }
      return rotations >= 3;
    });
    const total = logs().reduce((sum, f) => sum + statSync(path.join(dir, f)).size, 0);
    expect(logs().sort()).toEqual([`${id}-json.log`, `${id}-json.log.1`]);
    // Two files of 1 MiB, each possibly one JSON line over.
    expect(total).toBeLessThanOrEqual(2 * 1024 * 1024 + 2 * 1024);
    const rm = await box.run(["rm", "-f", "flood"]);
    expect(rm.code, rm.stderr).toBe(0);
  });
});
