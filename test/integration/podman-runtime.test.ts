// podman 4.3 driving an OCI runtime with runc's command line (issue 13): what
// a podman user sees when `--runtime` names minibox-runc. The runtime is a
// parameter so the harness itself is checked against Debian's runc:
//   MINIBOX_PODMAN_RUNTIME=/usr/sbin/runc npx vitest run test/integration/podman-runtime.test.ts
// MINIBOX_PODMAN_TRACE=FILE puts a wrapper in front of the runtime that logs
// every call podman and conmon make (argv, cwd, open fds) to FILE.
//
// podman is isolated (test/support/podman.ts): its own store, runroot, tmpdir
// and containers.conf (with `[engine.runtimes] minibox = [RUNTIME]`), cgroupfs,
// no event log, `--network none`, containers under a cgroup parent of this
// run's own; everything is removed at the end and checked to be gone.
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { cgroupDirs, mountsUnder, processesNaming } from "../../bench/common.js";
import { REPO_ROOT } from "../support/minibox.js";
import { podmanRun, podmanStore, runtimeTracer } from "../support/podman.js";
import { testEnv } from "../support/testenv.js";

const RUNTIME = process.env.MINIBOX_PODMAN_RUNTIME ?? path.join(REPO_ROOT, "minibox-runc");
const TRACE = process.env.MINIBOX_PODMAN_TRACE;
const PTY_DRIVER = path.join(REPO_ROOT, "test", "support", "pty-driver.py");

/** In the cgroup parent's name: what is ours. */
const TOKEN = `minibox-podman-${process.pid}`;
const CGROUP_PARENT = `/${TOKEN}`;
// Short (the overlay driver refuses runroots over 50 characters), o+x.
const work = mkdtempSync("/tmp/mbx-pod-");
chmodSync(work, 0o711);
/** What podman runs: the runtime, or the tracing wrapper in front of it. */
if (TRACE) writeFileSync(TRACE, `# podman-runtime.test.ts, runtime ${RUNTIME}\n`, { flag: "a" });
const runtime = TRACE ? runtimeTracer(path.join(work, "trace-runtime"), RUNTIME, TRACE) : RUNTIME;
const PODMAN = podmanStore(
  path.join(work, "podman"),
  path.join(work, "run"),
  path.join(work, "conf"),
  // Never the host's network definitions (podman system reset deletes them).
  { backend: "cni", configDir: path.join(work, "cni") },
  { minibox: runtime },
);
/** Cgroup directories (every hierarchy) whose path names `token`. */
const cgroupsNamed = (token: string) => cgroupDirs().filter((d) => d.includes(token));
const cgroupsBefore = new Set(cgroupsNamed(TOKEN));

/**
 * Container state dirs in runc's and minibox-runc's default --root (podman
 * 4.3 passes none): a container ID of 64 hex digits is podman's.
 */
const STATE_ROOTS = ["/run/runc", "/run/minibox-runc"];
const containerStates = () =>
  STATE_ROOTS.flatMap((root) => {
    try {
      return readdirSync(root)
        .filter((e) => /^[0-9a-f]{64}$/.test(e))
        .map((e) => path.join(root, e));
    } catch {
      return [];
    }
  });
const statesBefore = new Set(containerStates());

let image = "";

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `podman --runtime R ARGS` with the isolated configuration. */
function podman(args: string[], runtimeName = runtime): Result {
  const r = spawnSync("podman", PODMAN.args("--runtime", runtimeName, ...args), {
    env: PODMAN.env(),
    encoding: "utf8",
    // A safety net against a hung runtime, not an assertion.
    timeout: 90_000,
  });
  return { code: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** `podman run OPTIONS IMAGE COMMAND` with the line every podman run here shares (no network, our cgroup parent, limits runc can set). */
const run = (options: string[], ...command: string[]) =>
  podmanRun({ cgroupParent: CGROUP_PARENT, options, image, command });

function ok(r: Result): string {
  expect(r.code, `${r.stderr}${r.stdout}`).toBe(0);
  return r.stdout;
}

beforeAll(() => {
  expect(existsSync(RUNTIME), `no runtime at ${RUNTIME}`).toBe(true);
  PODMAN.writeConfig();
  const env = testEnv();
  image = `${env.registries.anon}/${env.fixtures.base.repo}:latest`;
  ok(podman(["pull", "--tls-verify=false", "-q", image]));
});

afterAll(() => {
  const problems: string[] = [];
  spawnSync("podman", PODMAN.args("rm", "-af", "-t", "0"), { env: PODMAN.env(), stdio: "ignore" });
  const reset = spawnSync("podman", PODMAN.args("system", "reset", "-f"), {
    env: PODMAN.env(),
    encoding: "utf8",
  });
  if (reset.status !== 0) problems.push(`podman system reset -f: ${reset.stderr.trim()}`);
  // Anything still there is a leak: reported, then removed.
  for (const mp of mountsUnder(work)) {
    problems.push(`mount ${mp}`);
    if (spawnSync("umount", [mp]).status !== 0) spawnSync("umount", ["-l", mp]);
  }
  // conmon and the container's processes name the runroot / store in their argv.
  for (const p of processesNaming(work)) {
    problems.push(`process ${p}`);
    try {
      process.kill(Number(p.split(" ")[0]), "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
  // The cgroup parent (and conmon's cgroup) stay after podman rm: podman
  // keeps them. Only those this run created, deepest first (rmdir only
  // removes an empty cgroup).
  const ours = cgroupsNamed(TOKEN).filter((d) => !cgroupsBefore.has(d));
  for (const dir of ours.sort((a, b) => b.length - a.length))
    spawnSync("rmdir", [dir], { stdio: "ignore" });
  for (const dir of cgroupsNamed(TOKEN))
    if (!cgroupsBefore.has(dir)) problems.push(`cgroup ${dir}`);
  // Reported, not removed: podman's delete --force should have.
  for (const dir of containerStates())
    if (!statesBefore.has(dir)) problems.push(`runtime state ${dir}`);
  rmSync(work, { recursive: true, force: true });
  if (problems.length > 0) throw new Error(`left behind:\n  ${problems.join("\n  ")}`);
});

describe(`podman --runtime ${RUNTIME}`, () => {
  // Each test's runtime calls under its name in the trace.
  beforeEach((ctx) => {
    if (TRACE) writeFileSync(TRACE, `# test: ${ctx.task.name}\n`, { flag: "a" });
  });

  it("run --rm IMAGE echo hi prints hi", () => {
    expect(ok(podman(run(["--rm"], "echo", "hi")))).toBe("hi\n");
  });

  it("the container's exit status is podman's", () => {
    const r = podman(run(["--rm"], "sh", "-c", "exit 3"));
    expect(r.code, r.stderr).toBe(3);
  });

  it("run -d, ps shows it Up, exec, logs, stop -t 2, rm", () => {
    const id = ok(podman(run(["-d"], "sh", "-c", "echo started; exec sleep 60"))).trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    try {
      const ps = ok(podman(["ps", "--no-trunc", "--format", "{{.ID}} {{.Status}}"]));
      expect(ps).toMatch(new RegExp(`^${id} Up`, "m"));
      expect(ok(podman(["exec", id, "echo", "in"]))).toBe("in\n");
      expect(ok(podman(["logs", id]))).toBe("started\n");
      ok(podman(["stop", "-t", "2", id]));
      const state = ok(podman(["inspect", "--format", "{{.State.Status}}", id])).trim();
      expect(state).toBe("exited");
      ok(podman(["rm", id]));
      expect(ok(podman(["ps", "-a", "--no-trunc", "--format", "{{.ID}}"]))).not.toContain(id);
    } finally {
      podman(["rm", "-f", "-t", "0", id]);
    }
  });

  it("pause and unpause (the runtime's freezer), update --memory, rm -f of a paused one", () => {
    const id = ok(podman(run(["-d", "--memory", "64m"], "sleep", "60"))).trim();
    try {
      const status = () => ok(podman(["inspect", "--format", "{{.State.Status}}", id])).trim();
      ok(podman(["pause", id]));
      expect(status()).toBe("paused");
      ok(podman(["unpause", id]));
      expect(status()).toBe("running");
      const dirs = cgroupsNamed(TOKEN).filter(
        (d) => d.startsWith("/sys/fs/cgroup/memory/") && d.includes(id),
      );
      expect(dirs).toHaveLength(1);
      // podman 4.3's update hands the runtime the new resources (update --resources).
      ok(podman(["update", "--memory", "96m", id]));
      const limit = readFileSync(path.join(dirs[0] as string, "memory.limit_in_bytes"), "utf8");
      expect(limit.trim()).toBe(String(96 * 2 ** 20));
      ok(podman(["pause", id]));
      ok(podman(["rm", "-f", "-t", "0", id]));
      expect(cgroupsNamed(TOKEN).filter((d) => d.includes(id))).toEqual([]);
    } finally {
      podman(["rm", "-f", "-t", "0", id]);
    }
  });

  it("run -it: a shell on the terminal, through the console socket", () => {
    const script = [
      { expect: "# " },
      { send: "echo $((6*7))\r" },
      // The answer, not the echo of what was typed ($((6*7))).
      { expect: "42" },
      { send: "exit\r" },
    ];
    const r = spawnSync(
      "python3",
      [
        PTY_DRIVER,
        JSON.stringify(script),
        "--",
        "podman",
        ...PODMAN.args("--runtime", runtime, ...run(["--rm", "-it"], "sh")),
      ],
      { env: PODMAN.env(), encoding: "utf8", timeout: 90_000 },
    );
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\r?\n42\r?\n/);
  });

  it("--memory 64m is the limit of the container's memory cgroup", () => {
    const id = ok(podman(run(["-d", "--memory", "64m"], "sleep", "60"))).trim();
    try {
      // Under our cgroup parent: <parent>/libpod-<id> with cgroupfs.
      const dirs = cgroupsNamed(TOKEN).filter(
        (d) => d.startsWith("/sys/fs/cgroup/memory/") && d.includes(id),
      );
      expect(dirs).toHaveLength(1);
      const limit = readFileSync(path.join(dirs[0] as string, "memory.limit_in_bytes"), "utf8");
      expect(limit.trim()).toBe(String(64 * 2 ** 20));
    } finally {
      ok(podman(["rm", "-f", "-t", "0", id]));
    }
  });

  it("the container reads its limit at /sys/fs/cgroup/memory (the spec's cgroup mount)", () => {
    const file = "/sys/fs/cgroup/memory/memory.limit_in_bytes";
    const out = ok(podman(run(["--rm", "--memory", "64m"], "cat", file)));
    expect(out.trim()).toBe(String(64 * 2 ** 20));
  });

  it("run --rm through containers.conf's runtime name (--runtime minibox)", () => {
    expect(ok(podman(run(["--rm"], "echo", "hi"), "minibox"))).toBe("hi\n");
  });
});
