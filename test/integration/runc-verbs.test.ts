// minibox-runc's pause, resume, update and ps on a real container (a
// busybox-static bundle), beside Debian's runc on the same bundle where
// callers depend on runc's words; and the verbs it refuses (events,
// checkpoint, restore), each with a one-line reason.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { errorOf, runcHarness, until } from "../support/runc-bundle.js";

const { work, root, runc, withoutNode, bundle, state, cgroupDirs } =
  runcHarness("minibox-runc-verbs-");
// Debian's runc on the same bundles, with its own --root (its error words are the reference).
const RUNC = "/usr/sbin/runc";
const real = existsSync(RUNC) ? runcHarness("runc-verbs-ref-", RUNC) : undefined;

afterEach(() => {
  for (const id of existsSync(root) ? readdirSync(root) : []) runc(["delete", "--force", id]);
  for (const id of real && existsSync(real.root) ? readdirSync(real.root) : [])
    real?.runc(["delete", "--force", id]);
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  if (real) rmSync(real.work, { recursive: true, force: true });
});

/** A container counting into /tmp/count (about 20 a second) until stopped. */
const COUNTER = "i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done";
const count = (b: string) => readFileSync(path.join(b, "rootfs/tmp/count"), "utf8").trim();

/** The container's directory in the v1 hierarchy (or the v2 cgroup) serving FILE. */
function cgroupFile(id: string, file: string): string {
  const dir = cgroupDirs(id).find((d) => existsSync(path.join(d, file)));
  if (!dir) throw new Error(`no ${file} in ${cgroupDirs(id).join(", ")}`);
  return path.join(dir, file);
}

describe("minibox-runc pause and resume", () => {
  it("a paused container stops counting, state says paused; resume lets it go on", async () => {
    const b = bundle("counter", (c) => {
      c.process.args = ["sh", "-c", COUNTER];
    });
    expect(runc(["run", "-d", "--bundle", b, "p1"]).code).toBe(0);
    await until(() => existsSync(path.join(b, "rootfs/tmp/count")), "the counter to start");

    const paused = runc(["pause", "p1"]);
    expect(paused.code, paused.stderr).toBe(0);
    expect(state("p1").status).toBe("paused");
    const frozenAt = count(b);
    // Nothing runs while frozen: the count stays where it was.
    await new Promise((r) => setTimeout(r, 500));
    expect(count(b)).toBe(frozenAt);
    // runc's words: pausing again, and the init's state (stopped in the refrigerator).
    expect(errorOf(runc(["pause", "p1"]).stderr)).toBe("container not running");

    const resumed = runc(["resume", "p1"]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(state("p1").status).toBe("running");
    await until(() => count(b) !== frozenAt, "the counter to go on");
    const notPaused = runc(["resume", "p1"]);
    expect(notPaused.code).toBe(1);
    expect(errorOf(notPaused.stderr)).toBe("container not paused");
  });

  it("delete --force of a paused container removes every cgroup dir, freezer included", () => {
    const b = bundle("paused-delete", (c) => {
      c.process.args = ["sleep", "60"];
    });
    expect(runc(["run", "-d", "--bundle", b, "p2"]).code).toBe(0);
    const dirs = cgroupDirs("p2");
    if (existsSync("/sys/fs/cgroup/freezer/tasks")) {
      expect(dirs.some((d) => d.startsWith("/sys/fs/cgroup/freezer/"))).toBe(true);
    }
    expect(runc(["pause", "p2"]).code).toBe(0);
    const d = runc(["delete", "--force", "p2"]);
    expect(d.code, d.stderr).toBe(0);
    expect(dirs.filter((dir) => existsSync(dir))).toEqual([]);
  });

  it("delete --force of a paused container without node: the fast path thaws it, kills it, removes it", () => {
    const b = bundle("paused-fast-delete", (c) => {
      c.process.args = ["sleep", "60"];
    });
    expect(runc(["run", "-d", "--bundle", b, "p3"]).code).toBe(0);
    const dirs = cgroupDirs("p3");
    expect(runc(["pause", "p3"]).code).toBe(0);
    expect(JSON.parse(withoutNode(["state", "p3"]).stdout).status).toBe("paused");
    // No node on PATH: a hand-over (a cgroup that stayed busy) would fail here, naming node.
    const d = withoutNode(["delete", "--force", "p3"]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stderr).toBe("");
    expect(existsSync(path.join(root, "p3"))).toBe(false);
    expect(dirs.filter((dir) => existsSync(dir))).toEqual([]);
  });

  it.runIf(real)(
    "runc says the same: resume of a running container, pause of a stopped one",
    () => {
      const ref = real as NonNullable<typeof real>;
      const b = ref.bundle("ref", (c) => {
        c.process.args = ["sleep", "60"];
      });
      const started = ref.runc(["run", "-d", "--bundle", b, "ref1"]);
      expect(started.code, started.stderr).toBe(0);
      const theirs = ref.runc(["resume", "ref1"]);
      expect(theirs.code).toBe(1);
      expect(errorOf(theirs.stderr)).toBe("container not paused");
      // ps --format json: a bare JSON array, as ours prints it.
      expect(ref.runc(["ps", "--format", "json", "ref1"]).stdout).toMatch(/^\[\d+(,\d+)*\]\n$/);
      expect(ref.runc(["pause", "ref1"]).code).toBe(0);
      expect(errorOf(ref.runc(["pause", "ref1"]).stderr)).toBe("container not running");
      expect(ref.runc(["resume", "ref1"]).code).toBe(0);
      expect(ref.runc(["kill", "ref1", "KILL"]).code).toBe(0);
      ref.runc(["delete", "--force", "ref1"]);

      const ours = bundle("ours", (c) => {
        c.process.args = ["sh", "-c", "exit 0"];
      });
      expect(runc(["create", "--bundle", ours, "o1"]).code).toBe(0);
      expect(runc(["kill", "o1", "KILL"]).code).toBe(0);
      return until(() => state("o1").status === "stopped", "o1 to stop").then(() => {
        const r = runc(["pause", "o1"]);
        expect(r.code).toBe(1);
        expect(errorOf(r.stderr)).toBe("container not running");
      });
    },
  );
});

describe("minibox-runc update", () => {
  it("flags and --resources - (as containerd's shim) change the cgroup's limits", () => {
    const b = bundle("update", (c) => {
      c.process.args = ["sleep", "60"];
      c.linux.resources = { ...c.linux.resources, memory: { limit: 64 * 1024 * 1024 } };
    });
    expect(runc(["run", "-d", "--bundle", b, "u1"]).code).toBe(0);
    const limit = cgroupFile("u1", "memory.limit_in_bytes");
    expect(readFileSync(limit, "utf8").trim()).toBe(String(64 * 1024 * 1024));

    const up = runc(["update", "--memory", "128m", "--pids-limit", "50", "u1"]);
    expect(up.code, up.stderr).toBe(0);
    expect(readFileSync(limit, "utf8").trim()).toBe(String(128 * 1024 * 1024));
    expect(readFileSync(cgroupFile("u1", "pids.max"), "utf8").trim()).toBe("50");

    // Down again, from a LinuxResources on stdin.
    const resources = path.join(work, "resources.json");
    writeFileSync(
      resources,
      JSON.stringify({
        memory: { limit: 32 * 1024 * 1024 },
        cpu: { quota: 20000, period: 100000 },
      }),
    );
    const down = runc(["update", "--resources", "-", "u1"], work, resources);
    expect(down.code, down.stderr).toBe(0);
    expect(readFileSync(limit, "utf8").trim()).toBe(String(32 * 1024 * 1024));
    expect(readFileSync(cgroupFile("u1", "cpu.cfs_quota_us"), "utf8").trim()).toBe("20000");
    expect(state("u1").status).toBe("running");
  });

  it("bad input: one line naming what is wrong, limits unchanged", () => {
    const b = bundle("update-bad", (c) => {
      c.process.args = ["sleep", "60"];
      c.linux.resources = { ...c.linux.resources, memory: { limit: 64 * 1024 * 1024 } };
    });
    expect(runc(["run", "-d", "--bundle", b, "u2"]).code).toBe(0);
    const resources = path.join(work, "bad.json");
    writeFileSync(resources, JSON.stringify({ memory: { limit: "lots" } }));
    const r = runc(["update", "-r", resources, "u2"]);
    expect(r.code).toBe(1);
    expect(errorOf(r.stderr)).toBe("resources: memory.limit: must be an integer");
    const m = runc(["update", "--memory", "plenty", "u2"]);
    expect(m.code).toBe(1);
    expect(errorOf(m.stderr)).toMatch(/invalid --memory value "plenty"/);
    const limit = cgroupFile("u2", "memory.limit_in_bytes");
    expect(readFileSync(limit, "utf8").trim()).toBe(String(64 * 1024 * 1024));
  });
});

describe("minibox-runc ps", () => {
  it("--format json lists the init and an exec'd process; the table keeps their ps lines", () => {
    const b = bundle("ps", (c) => {
      c.process.args = ["sleep", "60"];
    });
    expect(runc(["run", "-d", "--bundle", b, "ps1"]).code).toBe(0);
    const init = state("ps1").pid;
    const pidFile = path.join(work, "exec.pid");
    const e = runc(["exec", "-d", "--pid-file", pidFile, "ps1", "sleep", "61"]);
    expect(e.code, e.stderr).toBe(0);
    const execPid = Number(readFileSync(pidFile, "utf8"));

    const json = runc(["ps", "--format", "json", "ps1"]);
    expect(json.code, json.stderr).toBe(0);
    const pids = JSON.parse(json.stdout) as number[];
    expect(pids).toEqual(expect.arrayContaining([init, execPid]));
    expect(pids).not.toContain(process.pid);
    expect(json.stdout).toMatch(/^\[\d+(,\d+)*\]\n$/);

    const table = runc(["ps", "ps1"]);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/\bPID\b/);
    const listed = lines.slice(1).map((l) => Number(l.trim().split(/\s+/)[1]));
    expect(listed.sort()).toEqual([...pids].sort());
    // ps ARGS are the host ps's: -o pid,comm.
    const custom = runc(["ps", "ps1", "-o", "pid,comm"]);
    expect(custom.stdout).toMatch(new RegExp(`^\\s*${execPid} sleep$`, "m"));
  });
});

describe("minibox-runc: the verbs it refuses", () => {
  it.each([
    ["events", /^events is not supported by minibox-runc/],
    ["checkpoint", /^checkpoint is not supported by minibox-runc \(no CRIU\)$/],
    ["restore", /^restore is not supported by minibox-runc \(no CRIU\)$/],
  ])("%s: a one-line reason, exit status 1", (verb, message) => {
    const r = runc([verb, "--stats", "x"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(errorOf(r.stderr)).toMatch(message);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });
});
