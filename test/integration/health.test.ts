// Health checks (HEALTHCHECK, run --health-*), run by the container's monitor
// on the real kernel against the busybox fixture: what inspect (State.Health,
// Config.Healthcheck), ps (STATUS) and `wait --condition healthy` show, the
// timeout, a Dockerfile's HEALTHCHECK, --no-healthcheck, and that rm -f
// leaves no probe behind. Intervals are 1s; the tests wait for a state by
// polling it, never by timing it.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { pullInto, removeContainers, type Sandbox, sandbox } from "../support/minibox.js";
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

async function ok(args: string[]): Promise<string> {
  const r = await box.run(args);
  expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

async function inspect(name: string) {
  return JSON.parse(await ok(["inspect", name]))[0];
}

/** Polls `inspect` until its State.Health.Status is `status` (the test's timeout bounds it). */
async function healthBecomes(name: string, status: string) {
  for (;;) {
    const c = await inspect(name);
    if (c.State.Health?.Status === status) return c;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** ps's STATUS for `name`. */
async function psStatus(name: string): Promise<string> {
  return (await ok(["ps", "--filter", `name=^${name}$`, "--format", "{{.Status}}"])).trim();
}

/** The host PIDs of `pid`'s children (from /proc/N/stat's ppid field). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const run = (name: string, flags: string[], cmd = ["sleep", "300"]) =>
  ok(["run", "-d", "--name", name, "--network", "none", ...flags, IMAGE, ...cmd]);

describe("health checks", () => {
  test("a passing check turns healthy: inspect's State.Health and Config.Healthcheck, ps's STATUS", async () => {
    await run("passing", ["--health-cmd", "echo alive", "--health-interval", "1s"]);
    const starting = await inspect("passing");
    expect(starting.Config.Healthcheck).toEqual({
      Test: ["CMD-SHELL", "echo alive"],
      Interval: 1_000_000_000,
    });
    const c = await healthBecomes("passing", "healthy");
    expect(c.State.Health.FailingStreak).toBe(0);
    const last = c.State.Health.Log.at(-1);
    expect(last).toMatchObject({ ExitCode: 0, Output: "alive\n" });
    expect(Date.parse(last.End)).toBeGreaterThanOrEqual(Date.parse(last.Start));
    expect(await psStatus("passing")).toMatch(/^Up .* \(healthy\)$/);
    const events = await box.run(["events", "--until", "0s", "--format", "{{json .}}"]);
    const healthy = events.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((e) => e.Action === "health_status: healthy");
    expect(healthy).toMatchObject({
      Type: "container",
      Actor: { Attributes: { name: "passing" } },
      scope: "local",
    });
  });

  test("a failing check turns unhealthy after the retries, and ps shows it", async () => {
    await run("failing", [
      "--health-cmd",
      "echo broken; exit 1",
      "--health-interval",
      "1s",
      "--health-retries",
      "2",
    ]);
    const c = await healthBecomes("failing", "unhealthy");
    expect(c.State.Health.FailingStreak).toBeGreaterThanOrEqual(2);
    expect(c.State.Health.Log.length).toBeGreaterThanOrEqual(2);
    expect(c.State.Health.Log.length).toBeLessThanOrEqual(5);
    for (const entry of c.State.Health.Log) {
      expect(entry).toMatchObject({ ExitCode: 1, Output: "broken\n" });
    }
    expect(await psStatus("failing")).toMatch(/^Up .* \(unhealthy\)$/);
    // The change of status is an event (Docker's "health_status: unhealthy"), once.
    const events = await box.run([
      "events",
      "--until",
      "0s",
      "--filter",
      "container=failing",
      "--format",
      "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    expect(events.code, events.stderr).toBe(0);
    const health = events.stdout.split("\n").filter((l) => l.startsWith("health_status"));
    expect(health).toEqual(["health_status: unhealthy failing"]);
    // wait --condition healthy gives up at once on an unhealthy container.
    const w = await box.run(["wait", "--condition", "healthy", "failing"]);
    expect(w.code).not.toBe(0);
    expect(w.stderr).toContain("container failing is unhealthy");
  });

  test("a check that hangs is killed at the timeout and counts as a failure", async () => {
    const out = await run("hanging", [
      "--health-cmd",
      "exec sleep 300",
      "--health-interval",
      "1s",
      "--health-timeout",
      "1s",
      "--health-retries",
      "1",
    ]);
    expect(out.trim()).toMatch(/^[0-9a-f]{64}$/);
    const c = await healthBecomes("hanging", "unhealthy");
    expect(c.State.Health.Log[0]).toMatchObject({
      ExitCode: -1,
      Output: "Health check exceeded timeout (1s)",
    });
  });

  test("wait --condition healthy returns once the check passes", async () => {
    await run(
      "waited",
      ["--health-cmd", "test -e /tmp/ready", "--health-interval", "1s"],
      ["sh", "-c", "sleep 2; touch /tmp/ready; sleep 300"],
    );
    const w = await box.run(["wait", "--condition", "healthy", "waited"]);
    expect(w.code, w.stderr).toBe(0);
    expect((await inspect("waited")).State.Health.Status).toBe("healthy");
  });

  test("wait --condition healthy fails when the container stops first, or has no check", async () => {
    await run("stops", ["--health-cmd", "exit 1", "--health-interval", "1s"], ["sleep", "1"]);
    const w = await box.run(["wait", "--condition", "healthy", "stops"]);
    expect(w.code).not.toBe(0);
    expect(w.stderr).toMatch(/container stops (stopped before it was healthy|is unhealthy)/);
    await run("unchecked", []);
    const none = await box.run(["wait", "--condition", "healthy", "unchecked"]);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain("container unchecked has no health check");
    expect((await inspect("unchecked")).State.Health).toBeUndefined();
    expect(await psStatus("unchecked")).toMatch(/^Up [^(]*$/);
  });

  test("HEALTHCHECK from a Dockerfile built by minibox build (through its SHELL); --no-healthcheck turns it off", async () => {
    const ctx = path.join(box.root, "..", "ctx");
    rmSync(ctx, { recursive: true, force: true });
    mkdirSync(ctx, { recursive: true });
    writeFileSync(
      path.join(ctx, "Dockerfile"),
      [
        `FROM ${IMAGE}`,
        // A CMD-SHELL check runs through the image's SHELL, as Docker's does.
        'SHELL ["/bin/echo", "via-shell"]',
        "HEALTHCHECK --interval=1s --timeout=5s --retries=2 CMD echo from-image",
        'CMD ["sleep", "300"]',
        "",
      ].join("\n"),
    );
    await ok(["build", "-q", "-t", "checked:1", ctx]);
    await ok(["run", "-d", "--name", "built", "--network", "none", "checked:1"]);
    const c = await healthBecomes("built", "healthy");
    expect(c.Config.Healthcheck).toEqual({
      Test: ["CMD-SHELL", "echo from-image"],
      Interval: 1_000_000_000,
      Timeout: 5_000_000_000,
      Retries: 2,
    });
    expect(c.State.Health.Log.at(-1).Output).toBe("via-shell echo from-image\n");

    await ok(["run", "-d", "--name", "off", "--network", "none", "--no-healthcheck", "checked:1"]);
    const off = await inspect("off");
    // Docker merges the image's timings under the flags' Test.
    expect(off.Config.Healthcheck).toEqual({
      Test: ["NONE"],
      Interval: 1_000_000_000,
      Timeout: 5_000_000_000,
      Retries: 2,
    });
    expect(off.State.Health).toBeUndefined();
    expect(await psStatus("off")).toMatch(/^Up [^(]*$/);
  });

  test("bad flags: one clear line, nothing created", async () => {
    const before = await ok(["ps", "-aq"]);
    for (const [flags, message] of [
      [["--health-interval", "soon"], 'invalid argument "soon" for "--health-interval" flag'],
      [["--health-retries", "-1"], "--health-retries cannot be negative"],
      [
        ["--no-healthcheck", "--health-cmd", "true"],
        "--no-healthcheck conflicts with --health-* options",
      ],
    ] as const) {
      const r = await box.run(["run", "-d", ...flags, IMAGE, "true"]);
      expect(r.code).toBe(125);
      expect(r.stderr).toContain(message);
    }
    expect(await ok(["ps", "-aq"])).toBe(before);
  });

  test("rm -f leaves no monitor and no probe behind", async () => {
    const id = (
      await run("removed", [
        "--health-cmd",
        "exec sleep 300",
        "--health-interval",
        "1s",
        "--health-timeout",
        "60s",
      ])
    ).trim();
    const state = JSON.parse(
      readFileSync(path.join(box.root, "containers", id, "state.json"), "utf8"),
    );
    // Until a probe runs: the monitor's children are the init and the probe's executor.
    let children: number[] = [];
    while (children.length < 2) {
      await new Promise((r) => setTimeout(r, 200));
      children = childrenOf(state.monitorPid);
    }
    const top = await ok(["top", "removed"]);
    expect(top.split("\n").filter((l) => l.includes("sleep 300"))).toHaveLength(2);
    await ok(["rm", "-f", "removed"]);
    expect([state.monitorPid, ...children].filter(alive)).toEqual([]);
    expect(readdirSync(path.join(box.root, "containers"))).not.toContain(id);
  });
});
