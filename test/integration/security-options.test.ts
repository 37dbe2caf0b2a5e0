// --security-opt, --privileged and the seccomp filter, seen from inside a
// container the way a user would check them: /proc/self/status, a refused
// mkdir, the masked and read-only paths, the devices, inspect.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import type { SeccompProfile } from "../../src/runtime/seccomp/profile.js";
import { oneLineError, type Sandbox, sandbox } from "../support/minibox.js";
import { testEnv } from "../support/testenv.js";

const env = testEnv();
const IMAGE = `${env.registries.anon}/fixtures/base`;
const PODMAN_PROFILE = "/usr/share/containers/seccomp.json";
/** Every capability this kernel knows (0…cap_last_cap), as /proc/self/status writes the mask. */
const ALL_CAPS = (
  (1n << BigInt(Number(readFileSync("/proc/sys/kernel/cap_last_cap", "utf8")) + 1)) -
  1n
)
  .toString(16)
  .padStart(16, "0");

/** A profile that allows everything but mkdir: the filter, not the kernel, refuses it. */
const NO_MKDIR: SeccompProfile = {
  defaultAction: "SCMP_ACT_ALLOW",
  architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
  syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
};

let box: Sandbox;
let dir: string;
beforeAll(async () => {
  box = sandbox();
  dir = mkdtempSync(path.join(tmpdir(), "minibox-secopt-"));
  const r = await box.run(["pull", "-q", IMAGE]);
  expect(r.code, r.stderr).toBe(0);
});
afterEach(async () => {
  const ids = (await box.run(["ps", "-a", "-q"])).stdout.split("\n").filter(Boolean);
  if (ids.length) await box.run(["rm", "-f", ...ids]);
});
afterAll(() => {
  box.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

function sh(script: string, flags: string[] = []) {
  return box.run(["run", "--rm", "--network", "none", ...flags, IMAGE, "sh", "-c", script]);
}

/** The named fields of /proc/self/status inside a container run with `flags`. */
async function status(flags: string[] = []): Promise<Record<string, string>> {
  const r = await sh("cat /proc/self/status", flags);
  expect(r.code, r.stderr).toBe(0);
  return Object.fromEntries(
    r.stdout.split("\n").map((l) => l.split(":\t").map((x) => x.trim()) as [string, string]),
  );
}

function profileFile(name: string, content: unknown): string {
  const file = path.join(dir, name);
  writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content));
  return file;
}

describe("the seccomp filter and no_new_privs", () => {
  test("by default: Seccomp: 2 (a filter) and NoNewPrivs: 1", async () => {
    const s = await status();
    expect(s.Seccomp).toBe("2");
    expect(s.NoNewPrivs).toBe("1");
  });

  test("--security-opt seccomp=unconfined (and the seccomp: form): no filter", async () => {
    expect((await status(["--security-opt", "seccomp=unconfined"])).Seccomp).toBe("0");
    expect((await status(["--security-opt", "seccomp:unconfined"])).Seccomp).toBe("0");
  });

  test("no-new-privileges=false: NoNewPrivs: 0, the filter loaded all the same", async () => {
    const s = await status(["--security-opt", "no-new-privileges=false"]);
    expect(s.NoNewPrivs).toBe("0");
    expect(s.Seccomp).toBe("2");
  });

  test("a profile refusing mkdir: busybox mkdir fails with EPERM; unconfined it works", async () => {
    const file = profileFile("no-mkdir.json", NO_MKDIR);
    const refused = await sh("mkdir /tmp/d", ["--security-opt", `seccomp=${file}`]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("Operation not permitted");
    const allowed = await sh("mkdir /tmp/d && echo made", ["--security-opt", "seccomp=unconfined"]);
    expect(allowed.stdout).toBe("made\n");
  });

  test("podman's profile file loads and a container runs under it", async () => {
    const r = await sh("echo hi; grep Seccomp: /proc/self/status", [
      "--security-opt",
      `seccomp=${PODMAN_PROFILE}`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^hi\nSeccomp:\s+2\n$/);
  });
});

describe("bad --security-opt values: one line, exit 125, no container", () => {
  const cases: [string, string[], RegExp][] = [
    ["an unknown option", ["foo=bar"], /^minibox: invalid --security-opt 2: "foo=bar"/],
    [
      "a bad no-new-privileges value",
      ["no-new-privileges=maybe"],
      /invalid --security-opt 2: "no-new-privileges=maybe"/,
    ],
    ["seccomp without a value", ["seccomp"], /Invalid --security-opt: "seccomp"/],
    [
      "a missing profile file",
      ["seccomp=/nonexistent/p.json"],
      /opening seccomp profile \(\/nonexistent\/p\.json\) failed: .*no such file or directory/,
    ],
  ];
  for (const [name, opts, message] of cases) {
    test(name, async () => {
      const r = await box.run([
        "run",
        "--network",
        "none",
        "--security-opt",
        opts[0] as string,
        IMAGE,
        "true",
      ]);
      expect(r.code).toBe(125);
      expect(oneLineError(r)).toMatch(message);
      expect((await box.run(["ps", "-a", "-q"])).stdout).toBe("");
    });
  }

  test("a profile file that is not a profile names the file", async () => {
    for (const [name, content] of [
      ["broken.json", "{not json"],
      ["wrong.json", { syscalls: [] }],
    ] as const) {
      const file = profileFile(name, content);
      const r = await box.run([
        "run",
        "--network",
        "none",
        "--security-opt",
        `seccomp=${file}`,
        IMAGE,
        "true",
      ]);
      expect(r.code).toBe(125);
      expect(oneLineError(r)).toContain(file);
      expect((await box.run(["ps", "-a", "-q"])).stdout).toBe("");
    }
  });

  test("label= and apparmor= are accepted with a warning (minibox has no LSM)", async () => {
    const r = await sh("echo ran", ["--security-opt", "label=disable"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("ran\n");
    expect(r.stderr).toMatch(/WARNING: minibox has no SELinux support/);
  });
});

describe("--privileged", () => {
  test("every capability, no filter, no masked paths (default: masked)", async () => {
    const s = await status(["--privileged"]);
    expect(s.CapEff).toBe(ALL_CAPS);
    expect(s.CapBnd).toBe(ALL_CAPS);
    expect(s.Seccomp).toBe("0");
    // /proc/interrupts is on Docker's masked list (this kernel has no /proc/kcore).
    const masked = await sh("wc -c < /proc/interrupts");
    expect(masked.stdout.trim()).toBe("0");
    const shown = await sh("wc -c < /proc/interrupts", ["--privileged"]);
    expect(Number(shown.stdout.trim())).toBeGreaterThan(0);
  });

  test("--security-opt seccomp=FILE is kept under --privileged (Docker); builtin and no option: no filter", async () => {
    const file = profileFile("no-mkdir-privileged.json", NO_MKDIR);
    const flags = ["--privileged", "--security-opt", `seccomp=${file}`];
    const s = await status(flags);
    expect(s.Seccomp).toBe("2");
    expect(s.CapEff).toBe(ALL_CAPS);
    const refused = await sh("mkdir /tmp/d", flags);
    expect(refused.stderr).toContain("Operation not permitted");
    expect((await status(["--privileged", "--security-opt", "seccomp=builtin"])).Seccomp).toBe("0");
  });

  test("/proc/sys is writable where it is namespaced, /sys is mounted read-write", async () => {
    const script =
      "echo 1 > /proc/sys/net/ipv4/ip_forward && cat /proc/sys/net/ipv4/ip_forward; grep ' /sys ' /proc/mounts";
    const r = await sh(script, ["--privileged"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^1\nsysfs \/sys sysfs rw,/);
    const refused = await sh("echo 1 > /proc/sys/net/ipv4/ip_forward");
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Read-only file system/);
  });

  test("the host's devices are in /dev: usable with --userns=host, owned by the host's root under a user namespace", async () => {
    // Reading an unattached tun descriptor fails with EBADFD: the open itself worked.
    const host = await sh("cat /dev/net/tun", ["--privileged", "--userns=host"]);
    expect(host.stderr).toMatch(/File descriptor in bad state/);
    const userns = await sh("ls -ln /dev/net/tun; cat /dev/net/tun", ["--privileged"]);
    expect(userns.stdout).toMatch(/^c[-rw]{9}\s+1 65534\s+65534\s+10,\s+200 /);
    expect(userns.stderr).toMatch(/Permission denied/);
    const plain = await sh("ls /dev/net/tun");
    expect(plain.code).not.toBe(0);
  });
});

describe("inspect, exec, build", () => {
  test("HostConfig.SecurityOpt (null when none) and Privileged", async () => {
    const file = profileFile("inspect.json", NO_MKDIR);
    const run = (flags: string[]) =>
      box.run(["run", "-d", "--network", "none", ...flags, IMAGE, "true"]);
    const plain = (await run([])).stdout.trim();
    const opts = (
      await run(["--security-opt", "no-new-privileges=false", "--security-opt", `seccomp=${file}`])
    ).stdout.trim();
    const priv = (await run(["--privileged"])).stdout.trim();
    const host = async (id: string) =>
      JSON.parse((await box.run(["inspect", id])).stdout)[0].HostConfig;
    expect(await host(plain)).toMatchObject({ SecurityOpt: null, Privileged: false });
    expect((await host(opts)).SecurityOpt).toEqual([
      "no-new-privileges=false",
      `seccomp=${JSON.stringify(NO_MKDIR)}`,
    ]);
    expect(await host(priv)).toMatchObject({ SecurityOpt: null, Privileged: true });
  });

  test("exec runs under the container's filter, -u too; --privileged gives every capability", async () => {
    const id = (
      await box.run(["run", "-d", "--network", "none", IMAGE, "sleep", "60"])
    ).stdout.trim();
    const exec = (args: string[]) =>
      box.run(["exec", ...args, id, "grep", "-E", "^(Seccomp|CapEff|Uid):", "/proc/self/status"]);
    const root = await exec([]);
    expect(root.stdout).toMatch(/Seccomp:\s+2/);
    expect(root.stdout).not.toContain(ALL_CAPS);
    const user = await exec(["-u", "1000"]);
    expect(user.code, user.stderr).toBe(0);
    expect(user.stdout).toMatch(/Uid:\s+1000\s/);
    expect(user.stdout).toMatch(/Seccomp:\s+2/);
    const priv = await exec(["--privileged"]);
    expect(priv.stdout).toContain(`CapEff:\t${ALL_CAPS}`);
    expect(priv.stdout).toMatch(/Seccomp:\s+2/);
    const free = (
      await box.run([
        "run",
        "-d",
        "--network",
        "none",
        "--security-opt",
        "seccomp=unconfined",
        IMAGE,
        "sleep",
        "60",
      ])
    ).stdout.trim();
    const unconfined = await box.run(["exec", free, "grep", "Seccomp:", "/proc/self/status"]);
    expect(unconfined.stdout).toMatch(/Seccomp:\s+0/);
  });

  test("start: a stopped container runs under its filter again", async () => {
    const id = (
      await box.run([
        "run",
        "-d",
        "--network",
        "none",
        IMAGE,
        "grep",
        "Seccomp:",
        "/proc/self/status",
      ])
    ).stdout.trim();
    expect((await box.run(["wait", id])).stdout).toBe("0\n");
    expect((await box.run(["start", id])).code).toBe(0);
    expect((await box.run(["wait", id])).stdout).toBe("0\n");
    const logs = await box.run(["logs", id]);
    expect(logs.stdout).toMatch(/^Seccomp:\s+2\nSeccomp:\s+2\n$/);
  });

  test("build: RUN steps run under the default filter", async () => {
    const ctx = path.join(dir, "build");
    rmSync(ctx, { recursive: true, force: true });
    mkdirSync(ctx);
    writeFileSync(
      path.join(ctx, "Dockerfile"),
      `FROM ${IMAGE}\nRUN grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status > /status.txt\n`,
    );
    const b = await box.run(["build", "--network", "none", "-t", "secopt-build", ctx]);
    expect(b.code, b.stderr).toBe(0);
    const r = await box.run([
      "run",
      "--rm",
      "--network",
      "none",
      "secopt-build",
      "cat",
      "/status.txt",
    ]);
    expect(r.stdout).toMatch(/NoNewPrivs:\s+1\nSeccomp:\s+2\n/);
  });
});
