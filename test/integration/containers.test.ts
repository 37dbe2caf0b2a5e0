// Containers that live on: run -d with the native monitor, ps, logs, stop,
// kill, rm, wait, inspect — against the real kernel and the busybox fixture.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  MINIBOX_JS,
  oneLineError,
  pullInto,
  REPO_ROOT,
  removeContainers,
  type Sandbox,
  sandbox,
} from "../support/minibox.js";
import { testEnv } from "../support/testenv.js";

const env = testEnv();
const IMAGE = `${env.registries.anon}/fixtures/base`;

let box: Sandbox;
beforeAll(async () => {
  box = sandbox();
  await pullInto(box, IMAGE);
});
afterAll(async () => {
  await removeContainers(box);
  box.cleanup();
});

async function detached(args: string[]): Promise<string> {
  const r = await box.run(["run", "-d", ...args]);
  expect(r.code, r.stderr).toBe(0);
  const id = r.stdout.trim();
  expect(id).toMatch(/^[0-9a-f]{64}$/);
  return id;
}

function stateOf(id: string) {
  return JSON.parse(readFileSync(path.join(box.root, "containers", id, "state.json"), "utf8"));
}

/** Gone, or a zombie waiting for init to reap it (this VM's init is slow to). */
function processGone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z") ?? true;
  } catch {
    return true;
  }
}

async function until(check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("run -d", () => {
  test("prints the ID at once; the container runs on under its monitor; ps shows it", async () => {
    const id = await detached(["--name", "sleeper", "--label", "tier=demo", IMAGE, "sleep", "300"]);
    const state = stateOf(id);
    // The monitor is the init's parent and outlives the minibox that started it.
    const ppid = readFileSync(`/proc/${state.pid}/stat`, "utf8").split(") ")[1]?.split(" ")[1];
    expect(Number(ppid)).toBe(state.monitorPid);
    const ps = await box.run(["ps"]);
    const lines = ps.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$/);
    const row = lines.find((l) => l.startsWith(id.slice(0, 12)));
    expect(row).toMatch(/"sleep 300"\s+.* ago\s+Up (Less than a second|\d+ seconds?)\s+sleeper$/);
    expect((await box.run(["ps", "-q", "--filter", "label=tier=demo"])).stdout).toBe(
      `${id.slice(0, 12)}\n`,
    );
    expect((await box.run(["ps", "-q", "--filter", "label=tier=other"])).stdout).toBe("");
    const inspect = JSON.parse((await box.run(["inspect", "sleeper"])).stdout)[0];
    expect(inspect.Id).toBe(id);
    expect(inspect.Name).toBe("/sleeper");
    expect(inspect.State).toMatchObject({ Status: "running", Running: true, Pid: state.pid });
    expect(inspect.Config.Labels).toMatchObject({ tier: "demo" });
    expect(inspect.Config.Cmd).toEqual(["sleep", "300"]);
    // stop: SIGTERM is ignored by a PID 1 without a handler, so SIGKILL after the timeout.
    const stop = await box.run(["stop", "-t", "1", "sleeper"]);
    expect(stop.code, stop.stderr).toBe(0);
    expect(
      (await box.run(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "sleeper"])).stdout,
    ).toBe("exited 137\n");
    expect((await box.run(["ps"])).stdout).not.toContain("sleeper");
    expect((await box.run(["ps", "-a"])).stdout).toMatch(/Exited \(137\) .* sleeper/);
    // The monitor cleaned up and ended (a zombie at most, until init reaps it): no cgroup left.
    await until(() => processGone(state.monitorPid));
    expect(execFileSync("find", ["/sys/fs/cgroup", "-path", `*${id}*`]).toString()).toBe("");
    const rm = await box.run(["rm", "sleeper"]);
    expect(rm.code, rm.stderr).toBe(0);
    expect(existsSync(path.join(box.root, "containers", id))).toBe(false);
    expect((await box.run(["ps", "-a"])).stdout).not.toContain("sleeper");
  });

  test("logs: stdout and stderr kept apart, --tail, -t, -f until exit; exit recorded by the monitor", async () => {
    const id = await detached([
      "--name",
      "talker",
      IMAGE,
      "sh",
      "-c",
      'for i in 1 2 3; do echo "out $i"; echo "err $i" >&2; sleep 0.2; done; printf "no newline"; exit 3',
    ]);
    const follow = await box.run(["logs", "-f", "talker"]);
    expect(follow.code, follow.stderr).toBe(0);
    expect(follow.stdout).toBe("out 1\nout 2\nout 3\nno newline");
    expect(follow.stderr).toBe("err 1\nerr 2\nerr 3\n");
    await until(() => stateOf(id).status === "exited");
    expect(stateOf(id).exitCode).toBe(3);
    expect((await box.run(["wait", "talker"])).stdout).toBe("3\n");
    const tail = await box.run(["logs", "--tail", "2", "talker"]);
    expect([tail.stdout, tail.stderr]).toEqual(["no newline", "err 3\n"]);
    const stamped = await box.run(["logs", "-t", "--tail", "1", "talker"]);
    expect(stamped.stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z no newline$/);
    // Docker's json-file format, line by line.
    const raw = readFileSync(path.join(box.root, "containers", id, `${id}-json.log`), "utf8")
      .trim()
      .split("\n");
    expect(raw).toHaveLength(7);
    expect(JSON.parse(raw[0] as string)).toEqual({
      log: "out 1\n",
      stream: "stdout",
      time: expect.any(String),
    });
    expect(raw[0]).toMatch(/^\{"log":"out 1\\n","stream":"stdout","time":"[^"]+Z"\}$/);
    await box.run(["rm", "talker"]);
  });

  test("a foreground run goes through the same monitor: output to the terminal and to the log", async () => {
    const r = await box.run([
      "run",
      "--name",
      "fg",
      IMAGE,
      "sh",
      "-c",
      "echo out; echo err >&2; exit 4",
    ]);
    expect([r.code, r.stdout, r.stderr]).toEqual([4, "out\n", "err\n"]);
    const logs = await box.run(["logs", "fg"]);
    expect([logs.stdout, logs.stderr]).toEqual(["out\n", "err\n"]);
    expect((await box.run(["inspect", "-f", "{{.State.ExitCode}}", "fg"])).stdout).toBe("4\n");
    await box.run(["rm", "fg"]);
  });

  test("with -t, what the terminal showed is logged (one stream, like Docker)", async () => {
    const r = spawnSync(
      "python3",
      [
        path.join(REPO_ROOT, "test/support/pty-driver.py"),
        JSON.stringify([
          { expect: "# " },
          { send: "echo tty-$((2+3))\r" },
          { expect: "tty-5" },
          { send: "exit\r" },
        ]),
        "--",
        process.execPath,
        MINIBOX_JS,
        "--root",
        box.root,
        "run",
        "--name",
        "ttylog",
        "-it",
        IMAGE,
        "sh",
      ],
      { encoding: "utf8", timeout: 60_000 },
    );
    expect(r.status, r.stdout).toBe(0);
    const logs = await box.run(["logs", "ttylog"]);
    expect(logs.stdout).toContain("tty-5\r\n");
    expect(logs.stderr).toBe("");
    await box.run(["rm", "ttylog"]);
  });

  test("run -d --rm: the monitor removes the container when it exits", async () => {
    const id = await detached(["--rm", IMAGE, "sh", "-c", "sleep 0.3"]);
    await until(() => !existsSync(path.join(box.root, "containers", id)));
    expect(execFileSync("find", ["/sys/fs/cgroup", "-path", `*${id}*`]).toString()).toBe("");
  });

  test("kill -s, rm of a running container needs -f, unknown containers fail clearly", async () => {
    const id = await detached([
      "--name",
      "trapper",
      IMAGE,
      "sh",
      "-c",
      'trap "echo got-usr1" USR1; trap "exit 9" TERM; while true; do sleep 0.05; done',
    ]);
    await new Promise((r) => setTimeout(r, 300));
    expect((await box.run(["kill", "-s", "USR1", "trapper"])).code).toBe(0);
    await until(async () => (await box.run(["logs", "trapper"])).stdout.includes("got-usr1"));
    const refused = await box.run(["rm", "trapper"]);
    expect(refused.code).not.toBe(0);
    expect(oneLineError(refused)).toMatch(/is running.*rm -f/);
    expect((await box.run(["stop", "trapper"])).code).toBe(0);
    expect(stateOf(id).exitCode).toBe(9);
    expect((await box.run(["rm", "trapper"])).code).toBe(0);
    const missing = await box.run(["logs", "nosuch"]);
    expect(missing.code).not.toBe(0);
    expect(oneLineError(missing)).toMatch(/no such container: nosuch/);
  });

  test("a monitor killed with SIGKILL: the container dies with it and the next command records it", async () => {
    const id = await detached(["--name", "orphan", IMAGE, "sleep", "300"]);
    const { monitorPid, pid } = stateOf(id);
    process.kill(monitorPid, "SIGKILL");
    await until(() => !existsSync(`/proc/${pid}`));
    const ps = await box.run(["ps", "-a"]);
    expect(ps.stdout).toMatch(/Exited \(137\) .* orphan/);
    expect(execFileSync("find", ["/sys/fs/cgroup", "-path", `*${id}*`]).toString()).toBe("");
    expect((await box.run(["rm", "orphan"])).code).toBe(0);
  });
});

describe("the talk's sequence: a web server that lives on", () => {
  test("run -d --name, ps, logs -f, exec ps / exec -it top, stats, top, inspect labels, stop, rm", async () => {
    // busybox httpd in the foreground, verbose (one stderr line per request), serving /etc.
    const id = await detached([
      "--name",
      "server",
      "-m",
      "64m",
      "--label",
      "org.label-schema.name=web",
      IMAGE,
      "httpd",
      "-f",
      "-v",
      "-p",
      "8080",
      "-h",
      "/etc",
    ]);
    expect((await box.run(["ps"])).stdout).toMatch(/"httpd -f -v -p 8080…"\s+.*Up .*server/);

    // logs -f streams what the server writes while it runs.
    const follow = box.spawn(["logs", "-f", "server"]);
    let streamed = "";
    follow.child.stderr?.on("data", (d) => {
      streamed += d;
    });
    const page = await box.run([
      "exec",
      "server",
      "wget",
      "-qO-",
      "http://127.0.0.1:8080/os-release",
    ]);
    expect(page.code, page.stderr).toBe(0);
    expect(page.stdout).toContain('NAME="minibox busybox"');
    await until(() => /127\.0\.0\.1/.test(streamed));

    // exec sees the container's processes; the server is PID 1.
    const ps = await box.run(["exec", "server", "ps"]);
    expect(ps.stdout).toMatch(/^\s+1 root\s+httpd -f -v -p 8080 -h \/etc$/m);
    const top = spawnSync(
      "python3",
      [
        path.join(REPO_ROOT, "test/support/pty-driver.py"),
        JSON.stringify([{ expect: "httpd" }, { send: "q" }]),
        "--",
        process.execPath,
        MINIBOX_JS,
        "--root",
        box.root,
        "exec",
        "-it",
        "server",
        "top",
      ],
      { encoding: "utf8", timeout: 60_000 },
    );
    expect(top.status, top.stdout).toBe(0);
    expect(top.stdout).toMatch(/Mem:.*used/);
    expect(top.stdout).toMatch(/PID\s+PPID\s+USER/);

    const stats = await box.run(["stats", "--no-stream"]);
    expect(stats.stdout).toMatch(
      /^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS$/m,
    );
    expect(stats.stdout).toMatch(
      new RegExp(
        `^${id.slice(0, 12)}\\s+server\\s+[\\d.]+%\\s+[\\d.]+[KM]iB / 64MiB\\s+[\\d.]+%`,
        "m",
      ),
    );
    const json = JSON.parse(
      (await box.run(["stats", "--no-stream", "--format", "json", "server"])).stdout,
    );
    expect(json).toMatchObject({ Name: "server", PIDs: "1" });

    const topCmd = await box.run(["top", "server"]);
    expect(topCmd.stdout).toMatch(/^UID\s+PID\s+PPID\s+CONTAINER PID\s+STAT\s+CMD$/m);
    expect(topCmd.stdout).toMatch(/\s1\s+S\s+httpd -f -v -p 8080 -h \/etc$/m);

    const labels = await box.run([
      "inspect",
      "-f",
      '{{index .Config.Labels "org.label-schema.name"}}',
      "server",
    ]);
    expect(labels.stdout).toBe("web\n");

    expect((await box.run(["stop", "-t", "1", "server"])).code).toBe(0);
    const followed = await follow.done;
    expect(followed.code).toBe(0); // logs -f ends when the container does
    expect((await box.run(["rm", "server"])).code).toBe(0);
    expect((await box.run(["ps", "-a"])).stdout).not.toContain("server");
  });

  test("exec: -u, -w, -e, exit statuses, and a stopped container refuses", async () => {
    await detached(["--name", "target", IMAGE, "sleep", "300"]);
    expect(
      (
        await box.run([
          "exec",
          "-u",
          "nobody",
          "-w",
          "/tmp",
          "-e",
          "X=1",
          "target",
          "sh",
          "-c",
          "id -u; pwd; echo $X; echo $$",
        ])
      ).stdout,
    ).toBe("65534\n/tmp\n1\n2\n");
    expect((await box.run(["exec", "target", "sh", "-c", "exit 5"])).code).toBe(5);
    const missing = await box.run(["exec", "target", "no-such-cmd"]);
    expect(missing.code).toBe(127);
    expect(oneLineError(missing)).toMatch(/executable file not found/);
    // What exec writes lands in the container's writable layer, seen by its other processes.
    await box.run(["exec", "target", "sh", "-c", "echo hi > /tmp/from-exec"]);
    expect((await box.run(["exec", "target", "cat", "/tmp/from-exec"])).stdout).toBe("hi\n");
    await box.run(["stop", "-t", "0", "target"]);
    const stopped = await box.run(["exec", "target", "true"]);
    expect(stopped.code).not.toBe(0);
    expect(oneLineError(stopped)).toMatch(/is not running/);
    await box.run(["rm", "target"]);
  });
});

describe("lifecycle", () => {
  test("start runs a stopped container again on the same filesystem; rename; restart", async () => {
    const id = await detached([
      "--name",
      "again",
      IMAGE,
      "sh",
      "-c",
      "echo run >> /count; cat /count | wc -l; sleep 300",
    ]);
    await until(async () => (await box.run(["logs", "again"])).stdout === "1\n");
    await box.run(["stop", "-t", "0", "again"]);
    expect((await box.run(["start", "again"])).stdout).toBe("again\n");
    // The second run sees the first one's write: same upper layer.
    await until(async () => (await box.run(["logs", "again"])).stdout === "1\n2\n");
    expect((await box.run(["rename", "again", "renamed"])).code).toBe(0);
    expect((await box.run(["ps", "--filter", "name=renamed", "-q"])).stdout).toBe(
      `${id.slice(0, 12)}\n`,
    );
    const taken = await detached(["--name", "other", IMAGE, "sleep", "300"]);
    const clash = await box.run(["rename", "renamed", "other"]);
    expect(oneLineError(clash)).toMatch(/already in use/);
    expect((await box.run(["restart", "-t", "0", "renamed"])).code).toBe(0);
    await until(async () => (await box.run(["logs", "renamed"])).stdout === "1\n2\n3\n");
    expect((await box.run(["rm", "-f", "renamed", taken])).code).toBe(0);
  });

  test("--restart on-failure:2 runs a failing container three times in all; stop disables always", async () => {
    await detached([
      "--name",
      "flaky",
      "--restart",
      "on-failure:2",
      IMAGE,
      "sh",
      "-c",
      "echo try; exit 1",
    ]);
    await until(async () => {
      const state = JSON.parse((await box.run(["inspect", "flaky"])).stdout)[0].State;
      return !state.Running && (await box.run(["logs", "flaky"])).stdout === "try\ntry\ntry\n";
    }, 20_000);
    expect((await box.run(["inspect", "-f", "{{.State.ExitCode}}", "flaky"])).stdout).toBe("1\n");
    await box.run(["rm", "flaky"]);

    await detached(["--name", "forever", "--restart", "always", IMAGE, "sh", "-c", "sleep 0.2"]);
    await until(
      async () => (await box.run(["logs", "forever"])).code === 0 && restarts("forever") >= 2,
      20_000,
    );
    await box.run(["stop", "-t", "0", "forever"]);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await box.run(["inspect", "-f", "{{.State.Running}}", "forever"])).stdout).toBe(
      "false\n",
    );
    await box.run(["rm", "-f", "forever"]);
    const conflict = await box.run(["run", "--rm", "--restart", "always", IMAGE, "true"]);
    expect(conflict.code).toBe(125);
    expect(oneLineError(conflict)).toMatch(/conflicting options: --restart and --rm/);
  });

  test("container prune removes stopped containers only", async () => {
    const stopped = await detached([IMAGE, "true"]);
    const running = await detached([IMAGE, "sleep", "300"]);
    await until(() => stateOf(stopped).status === "exited");
    const prune = await box.run(["container", "prune", "-f"]);
    expect(prune.stdout).toContain(stopped);
    expect(prune.stdout).not.toContain(running);
    expect(existsSync(path.join(box.root, "containers", stopped))).toBe(false);
    await box.run(["rm", "-f", running]);
  });
});

function restarts(name: string): number {
  const dir = path.join(box.root, "containers");
  for (const id of readdirSync(dir) as string[]) {
    const s = JSON.parse(readFileSync(path.join(dir, id, "state.json"), "utf8"));
    if (s.name === name) return s.restartCount ?? 0;
  }
  return 0;
}

describe("logs under load", () => {
  test("100 MB of output: every line is in the log, and the container is not held back", async () => {
    const started = Date.now();
    const id = await detached([
      "--name",
      "loud",
      IMAGE,
      "sh",
      "-c",
      'yes "0123456789012345678901234567890123456789012345678901234567890" | head -n 1600000; echo done',
    ]);
    expect((await box.run(["wait", "loud"])).stdout).toBe("0\n");
    // Generous: on this 2-core machine it takes a few seconds; unbounded slowdown would not finish.
    expect(Date.now() - started).toBeLessThan(60_000);
    const log = path.join(box.root, "containers", id, `${id}-json.log`);
    const lines = execFileSync("wc", ["-l", log]).toString().trim().split(" ")[0];
    expect(Number(lines)).toBe(1_600_001);
    expect((await box.run(["logs", "--tail", "1", "loud"])).stdout).toBe("done\n");
    await box.run(["rm", "loud"]);
  });

  test("--log-opt max-size/max-file rotates the log and keeps the newest lines", async () => {
    const id = await detached([
      "--log-opt",
      "max-size=100k",
      "--log-opt",
      "max-file=3",
      IMAGE,
      "sh",
      "-c",
      'i=0; while [ $i -lt 5000 ]; do echo "line $i"; i=$((i+1)); done',
    ]);
    await box.run(["wait", id]);
    const dir = path.join(box.root, "containers", id);
    for (const f of [`${id}-json.log`, `${id}-json.log.1`, `${id}-json.log.2`]) {
      expect(existsSync(path.join(dir, f)), f).toBe(true);
    }
    expect(existsSync(path.join(dir, `${id}-json.log.3`))).toBe(false);
    const out = (await box.run(["logs", id])).stdout.trimEnd().split("\n");
    expect(out.at(-1)).toBe("line 4999");
    // In order, without gaps, from wherever the oldest kept file starts.
    const first = Number(out[0]?.split(" ")[1]);
    expect(out).toEqual(Array.from({ length: 5000 - first }, (_, i) => `line ${first + i}`));
    await box.run(["rm", id]);
  });
});

describe("many containers", () => {
  test("50 detached containers started, listed, logged, stopped and removed leave nothing behind", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 50; i++)
      ids.push(
        await detached(["--name", `many${i}`, IMAGE, "sh", "-c", `echo hello ${i}; sleep 300`]),
      );
    const ps = (await box.run(["ps", "-q"])).stdout.trim().split("\n");
    expect(ps).toHaveLength(50);
    for (const i of [0, 25, 49]) {
      await until(async () => (await box.run(["logs", `many${i}`])).stdout === `hello ${i}\n`);
    }
    const stop = await box.run(["stop", "-t", "0", ...ids]);
    expect(stop.code, stop.stderr).toBe(0);
    const rm = await box.run(["rm", ...ids]);
    expect(rm.code, rm.stderr).toBe(0);
    expect((await box.run(["ps", "-aq"])).stdout).toBe("");
    // (Only this test's cgroups: a benchmark may run other minibox containers meanwhile.)
    const cgroups = execFileSync("find", [
      "/sys/fs/cgroup",
      "-path",
      "*minibox/*",
      "-type",
      "d",
    ]).toString();
    for (const id of ids) {
      expect(cgroups).not.toContain(id);
      expect(existsSync(path.join(box.root, "containers", id))).toBe(false);
    }
    expect(readdirSync(path.join(box.root, "names"))).toEqual([]);
  }, 300_000);
});
