// `minibox run` against the real kernel, with the busybox fixture image from
// the test registry: each isolation point, each limit, the exit statuses,
// bad input, and the terminal.
import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { MINIBOX_JS, oneLineError, REPO_ROOT, type Sandbox, sandbox } from "../support/minibox.js";
import { testEnv } from "../support/testenv.js";

const env = testEnv();
const IMAGE = `${env.registries.anon}/fixtures/base`;

let box: Sandbox;
beforeAll(async () => {
  box = sandbox();
  const r = await box.run(["pull", "-q", IMAGE]);
  expect(r.code, r.stderr).toBe(0);
});
afterAll(() => box.cleanup());

/** `minibox run --rm [flags] IMAGE cmd…` */
function run(flags: string[], ...cmd: string[]) {
  return box.run(["run", "--rm", ...flags, IMAGE, ...cmd]);
}
function sh(script: string, flags: string[] = []) {
  return run(flags, "sh", "-c", script);
}

describe("the talk's first steps", () => {
  test("run IMAGE cat /etc/os-release prints the image's file", async () => {
    const r = await run([], "cat", "/etc/os-release");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('NAME="minibox busybox"');
  });

  test("echo $$; id; hostname; ls /proc: PID 1, root, the container's hostname, only its processes", async () => {
    const r = await sh("echo $$; id; hostname; ls /proc");
    expect(r.code, r.stderr).toBe(0);
    const [pid, id, hostname, ...proc] = r.stdout.trim().split("\n");
    expect(pid).toBe("1");
    expect(id).toBe("uid=0(root) gid=0(root) groups=0(root)");
    expect(hostname).toMatch(/^[0-9a-f]{12}$/);
    const pids = proc.filter((p) => /^\d+$/.test(p)).map(Number);
    expect(pids).toContain(1);
    // sh, and at most the ls it forked: nothing of the host's hundreds of processes.
    expect(pids.length).toBeLessThanOrEqual(2);
    expect(Math.max(...pids)).toBeLessThan(10);
  });
});

describe("isolation", () => {
  test("every namespace differs from the host's", async () => {
    const kinds = ["pid", "mnt", "uts", "ipc", "net", "user", "cgroup"];
    const r = await sh(kinds.map((k) => `readlink /proc/self/ns/${k}`).join("; "));
    expect(r.code, r.stderr).toBe(0);
    const inside = r.stdout.trim().split("\n");
    kinds.forEach((k, i) => {
      expect(inside[i], k).toMatch(new RegExp(`^${k}:\\[\\d+\\]$`));
      expect(inside[i], k).not.toBe(
        execFileSync("readlink", [`/proc/self/ns/${k}`])
          .toString()
          .trim(),
      );
    });
  });

  test("--hostname sets the UTS name and /etc/hostname", async () => {
    const r = await sh("hostname; cat /etc/hostname", ["--hostname", "box1"]);
    expect(r.stdout).toBe("box1\nbox1\n");
  });

  test("--network none: only a loopback interface, and it is up", async () => {
    const r = await sh("ls /sys/class/net; cat /sys/class/net/lo/flags", ["--network", "none"]);
    expect(r.code, r.stderr).toBe(0);
    const [iface, flags] = r.stdout.trim().split("\n");
    expect(iface).toBe("lo");
    expect(Number(flags) & 1).toBe(1); // IFF_UP
  });

  test("by default the container is on the bridge: eth0 and lo, in a network namespace of its own", async () => {
    const r = await sh("ls /sys/class/net; readlink /proc/self/ns/net");
    expect(r.code, r.stderr).toBe(0);
    const [eth0, lo, ns] = r.stdout.trim().split("\n");
    expect([eth0, lo]).toEqual(["eth0", "lo"]);
    expect(ns).not.toBe(execFileSync("readlink", ["/proc/self/ns/net"]).toString().trim());
  });

  test("--network host shares the host's network namespace", async () => {
    const r = await sh("readlink /proc/self/ns/net", ["--network", "host"]);
    expect(r.stdout.trim()).toBe(execFileSync("readlink", ["/proc/self/ns/net"]).toString().trim());
  });

  test("the cgroup namespace makes the container's cgroup its root", async () => {
    const r = await sh("cat /proc/self/cgroup");
    for (const line of r.stdout.trim().split("\n")) expect(line).toMatch(/:\/$/);
  });

  test("mount namespace: the overlay is /, host mounts are invisible, nothing leaks to the host", async () => {
    const before = readFileSync("/proc/self/mountinfo", "utf8");
    const r = await sh("cat /proc/mounts");
    expect(r.stdout.split("\n")[0]).toMatch(/^overlay \/ overlay /);
    expect(r.stdout).not.toContain("/sys/fs/cgroup/memory");
    expect(r.stdout).not.toMatch(/ \/work/);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).toBe(before);
  });
});

describe("user namespace", () => {
  test("root in the container is an unprivileged uid range on the host", async () => {
    const r = await sh("cat /proc/self/uid_map /proc/self/gid_map");
    const [uid, gid] = r.stdout
      .trim()
      .split("\n")
      .map((l) => l.trim().split(/\s+/).map(Number));
    expect(uid?.[0]).toBe(0);
    expect(uid?.[1]).toBeGreaterThanOrEqual(65536);
    expect(uid?.[2]).toBe(65536);
    expect(gid?.[1]).toBeGreaterThanOrEqual(65536);
    const recorded = JSON.parse(readFileSync(path.join(box.root, "userns.json"), "utf8"));
    expect(uid?.[1]).toBe(recorded.uid.hostID);
  });

  test("image files show their real owners; root may write where root may", async () => {
    const r = await sh(
      "stat -c '%u:%g %n' /bin/busybox /etc/passwd /root /home/app; touch /root/ok && echo wrote",
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      "0:0 /bin/busybox\n0:0 /etc/passwd\n0:0 /root\n1000:1000 /home/app\nwrote\n",
    );
  });

  test("a file the container's root creates belongs to the mapped uid on the host", async () => {
    const r = await box.run(["run", "--name", "owner-check", IMAGE, "touch", "/made-here"]);
    expect(r.code, r.stderr).toBe(0);
    const state = JSON.parse(readFileSync(path.join(box.root, "userns.json"), "utf8"));
    const dirs = readdirSync(path.join(box.root, "containers"));
    const dir = dirs.find((d) =>
      readFileSync(path.join(box.root, "containers", d, "state.json"), "utf8").includes(
        '"owner-check"',
      ),
    ) as string;
    expect(statSync(path.join(box.root, "containers", dir, "upper", "made-here")).uid).toBe(
      state.uid.hostID,
    );
  });

  test("USER nobody and -u uid:gid work; supplementary groups come from /etc/group", async () => {
    expect((await run(["-u", "nobody"], "id")).stdout).toBe(
      "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n",
    );
    expect((await run(["-u", "1000:50"], "id")).stdout).toBe(
      "uid=1000(app) gid=50(staff) groups=50(staff)\n",
    );
    expect((await run(["-u", "app"], "id")).stdout).toBe(
      "uid=1000(app) gid=1000(app) groups=50(staff),1000(app)\n",
    );
    const denied = await run(["-u", "nobody"], "touch", "/root/x");
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain("Permission denied");
  });

  test("without idmapped mounts, layers are copied with shifted owners and look the same inside", async () => {
    const r = await box.run(
      ["run", "--rm", IMAGE, "sh", "-c", "stat -c '%u:%g %n' /bin/busybox /home/app; id"],
      {
        env: { MINIBOX_NO_IDMAP: "1" },
      },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      "0:0 /bin/busybox\n1000:1000 /home/app\nuid=0(root) gid=0(root) groups=0(root)\n",
    );
    const shifted = readdirSync(path.join(box.root, "layers-shifted"));
    expect(shifted).toHaveLength(1);
  });

  test("--userns=host runs without a user namespace", async () => {
    const r = await sh("cat /proc/self/uid_map", ["--userns=host"]);
    expect(r.stdout.trim().split(/\s+/)).toEqual(["0", "0", "4294967295"]);
  });
});

describe("root filesystem", () => {
  test("/dev holds the usual devices and links, and devpts, shm, mqueue are mounted", async () => {
    const r = await sh(
      "ls /dev; readlink /dev/ptmx; readlink /dev/fd; readlink /dev/stdin; grep -E ' /dev/(pts|shm|mqueue) ' /proc/mounts | cut -d' ' -f2,3; echo x > /dev/null && head -c 4 /dev/zero | wc -c",
    );
    expect(r.code, r.stderr).toBe(0);
    for (const d of [
      "null",
      "zero",
      "full",
      "random",
      "urandom",
      "tty",
      "ptmx",
      "pts",
      "shm",
      "mqueue",
      "fd",
      "stdin",
      "stdout",
      "stderr",
    ]) {
      expect(r.stdout.split("\n")).toContain(d);
    }
    expect(r.stdout).toContain("pts/ptmx\n/proc/self/fd\n/proc/self/fd/0\n");
    for (const m of ["/dev/pts devpts", "/dev/shm tmpfs", "/dev/mqueue mqueue"])
      expect(r.stdout).toContain(m);
    expect(r.stdout.trim().endsWith("4")).toBe(true);
  });

  test("/sys is read-only; masked paths are empty; /proc/sys is read-only", async () => {
    const r = await sh(
      "touch /sys/x 2>&1; wc -c < /proc/keys; ls /sys/firmware | wc -l; (echo 1 > /proc/sys/kernel/printk) 2>&1; echo done",
    );
    expect(r.stdout).toMatch(/touch: \/sys\/x: Read-only file system/);
    expect(r.stdout).toMatch(/^0$/m);
    expect(r.stdout).toMatch(
      /printk: Read-only file system|can't create \/proc\/sys\/kernel\/printk/,
    );
    expect(r.stdout).toContain("done");
  });

  test("/etc/hosts and /etc/resolv.conf are the container's own", async () => {
    const r = await sh("cat /etc/hosts; grep -c nameserver /etc/resolv.conf");
    expect(r.stdout).toContain("127.0.0.1\tlocalhost");
    expect(Number(r.stdout.trim().split("\n").at(-1))).toBeGreaterThan(0);
  });

  test("--read-only: the root filesystem refuses writes, /dev still works", async () => {
    const r = await sh("touch /x 2>&1; echo ok > /dev/null && echo dev-ok", ["--read-only"]);
    expect(r.stdout).toContain("Read-only file system");
    expect(r.stdout).toContain("dev-ok");
  });

  test("a three-layer image with whiteouts runs with the stacked view", async () => {
    const layered = `${env.registries.anon}/fixtures/layered`;
    const r = await box.run([
      "run",
      "--rm",
      layered,
      "sh",
      "-c",
      "ls /etc/todelete.txt 2>&1; ls /opt/replaced; stat -c %s /data/big.bin",
    ]);
    expect(r.stdout).toContain("No such file or directory");
    expect(r.stdout).toContain("new.txt");
    expect(r.stdout).not.toContain("old.txt");
    expect(r.stdout).toContain(String(env.fixtures.layered.bigFile.size));
  });

  test("writes land in the container's layer, not in the image", async () => {
    await sh("echo changed > /etc/os-release");
    expect((await run([], "cat", "/etc/os-release")).stdout).toContain("minibox busybox");
  });
});

describe("process", () => {
  test("Docker's 14 default capabilities, --cap-add/--cap-drop, none for a non-root user, no_new_privs", async () => {
    const caps = async (flags: string[]) =>
      (await sh("grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status", flags)).stdout;
    expect(await caps([])).toBe(
      "CapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\nNoNewPrivs:\t1\n",
    );
    expect(await caps(["--cap-drop", "chown", "--cap-add", "NET_ADMIN"])).toContain(
      "CapEff:\t00000000a80435fa",
    );
    expect(await caps(["-u", "nobody"])).toContain("CapEff:\t0000000000000000");
  });

  test("no file descriptor but stdio reaches the program; rlimits stay under the caller's hard limit", async () => {
    const r = await sh("ls /proc/self/fd; ulimit -Hn");
    const lines = r.stdout.trim().split("\n");
    expect(lines.slice(0, -1)).toEqual(["0", "1", "2", "3"]); // 3: ls's own directory handle
    const hostHard = readFileSync("/proc/self/limits", "utf8").match(
      /Max open files\s+\d+\s+(\d+)/,
    )?.[1];
    expect(Number(lines.at(-1))).toBeLessThanOrEqual(Number(hostHard));
  });

  test("Env, -e, --env-file, HOME, HOSTNAME, PATH and -w", async () => {
    const file = path.join(box.root, "..", "env.list");
    writeFileSync(file, "# comment\nFROM_FILE=yes\n");
    const r = await sh('echo "$FOO|$FROM_FILE|$HOME|$HOSTNAME|$PATH"; pwd', [
      "-e",
      "FOO=bar",
      "--env-file",
      file,
      "-w",
      "/tmp",
      "--hostname",
      "h1",
    ]);
    expect(r.stdout).toBe(
      "bar|yes|/root|h1|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n/tmp\n",
    );
  });

  test("--entrypoint replaces the image's entrypoint and command", async () => {
    const r = await run(["--entrypoint", "echo"], "hello", "world");
    expect(r.stdout).toBe("hello world\n");
  });

  test("--init: the program is PID 2 under a reaper that passes on its exit status", async () => {
    const r = await sh("echo $$; exit 5", ["--init"]);
    expect(r.stdout).toBe("2\n");
    expect(r.code).toBe(5);
  });
});

describe("exit statuses", () => {
  test.each([
    ["the program's own code", ["sh", "-c", "exit 3"], [], 3],
    ["128+N when killed by signal N", ["sh", "-c", "kill -9 $$"], ["--init"], 137],
  ])("%s", async (_name, cmd, flags, code) => {
    expect((await run(flags as string[], ...(cmd as string[]))).code).toBe(code);
  });

  test("127 for a command that is not found, 126 for one that cannot be executed", async () => {
    const missing = await run([], "no-such-command");
    expect(missing.code).toBe(127);
    expect(oneLineError(missing)).toBe(
      'minibox: exec: "no-such-command": executable file not found in $PATH',
    );
    const notExec = await run([], "/etc/passwd");
    expect(notExec.code).toBe(126);
    expect(oneLineError(notExec)).toBe('minibox: exec: "/etc/passwd": permission denied');
  });

  test("125 with one clear line for bad input: -u, --memory, a missing image, a bad flag", async () => {
    const cases: [string[], RegExp][] = [
      [["run", "--rm", "-u", "nosuchuser", IMAGE, "id"], /unable to find user nosuchuser/],
      [["run", "--rm", "-m", "80x", IMAGE, "id"], /invalid --memory value "80x"/],
      [["run", "--rm", "--cpus", "0", IMAGE, "id"], /--cpus/],
      [
        ["run", "--rm", `${env.registries.anon}/fixtures/nope`, "id"],
        /manifest for .*fixtures\/nope:latest not found/,
      ],
      [["run", "--rm", "--pull", "never", "nothere:1", "id"], /no such image: nothere:1/],
    ];
    for (const [args, message] of cases) {
      const r = await box.run(args);
      expect(r.code, args.join(" ")).toBe(125);
      // A missing image is looked for in the registry first ("Unable to find image … locally",
      // like Docker); the error itself is still one line, the last.
      const last = r.stderr.trimEnd().split("\n").at(-1) as string;
      expect(last.startsWith("minibox: "), r.stderr).toBe(true);
      expect(last).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  test("a container name is unique; --rm frees it", async () => {
    const first = await box.run(["run", "--name", "dup", IMAGE, "true"]);
    expect(first.code, first.stderr).toBe(0);
    const second = await box.run(["run", "--name", "dup", IMAGE, "true"]);
    expect(second.code).toBe(125);
    expect(oneLineError(second)).toMatch(
      /the container name "\/dup" is already in use by container "[0-9a-f]{64}"/,
    );
    const a = await box.run(["run", "--rm", "--name", "reused", IMAGE, "true"]);
    const b = await box.run(["run", "--rm", "--name", "reused", IMAGE, "true"]);
    expect([a.code, b.code]).toEqual([0, 0]);
  });

  test("SIGTERM to minibox reaches the container's init", async () => {
    const { child, done } = box.spawn([
      "run",
      "--rm",
      IMAGE,
      "sh",
      "-c",
      'trap "exit 42" TERM; echo ready; while true; do sleep 0.05; done',
    ]);
    await new Promise<void>((resolve) =>
      child.stdout?.on("data", (d) => String(d).includes("ready") && resolve()),
    );
    child.kill("SIGTERM");
    expect((await done).code).toBe(42);
  });
});

describe("limits", () => {
  test("--memory: a process past the limit is OOM-killed: exit 137 and 'OOM killed'", async () => {
    const r = await sh("x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done", ["-m", "20m"]);
    expect(r.code).toBe(137);
    expect(oneLineError(r)).toMatch(/OOM killed/);
  });

  test("--pids-limit stops a fork bomb", async () => {
    // The shell counts the children it managed to start; it stops at the first refused fork.
    const r = await sh("i=0; while [ $i -lt 30 ]; do sleep 3 & i=$((i+1)); echo $i; done", [
      "--pids-limit",
      "10",
    ]);
    const started = Number(r.stdout.trim().split("\n").at(-1));
    // The shell is one of the 10: at most 9 children, far fewer than the 30 asked for.
    expect(started).toBeGreaterThan(0);
    expect(started).toBeLessThanOrEqual(9);
    expect(r.stderr).toMatch(/can't fork/);
  });

  test("--cpus 0.5 keeps a busy loop near half a core", async () => {
    const r = await sh('time timeout 2 sh -c "while :; do :; done"', ["--cpus", "0.5"]);
    const real = Number(/real\s+0m\s*([\d.]+)s/.exec(r.stderr)?.[1]);
    const user = Number(/user\s+0m\s*([\d.]+)s/.exec(r.stderr)?.[1]);
    const sys = Number(/sys\s+0m\s*([\d.]+)s/.exec(r.stderr)?.[1]);
    const share = (user + sys) / real;
    expect(share, r.stderr).toBeGreaterThan(0.3);
    expect(share, r.stderr).toBeLessThan(0.7);
  });
});

describe("terminal", () => {
  test("run -it IMAGE sh gives a working interactive shell", () => {
    const script = [
      { expect: "# " },
      { send: "echo hello-$((40+2)); tty\r" },
      { expect: "hello-42" },
      { send: "exit 3\r" },
    ];
    const r = spawnSync(
      "python3",
      [
        path.join(REPO_ROOT, "test/support/pty-driver.py"),
        JSON.stringify(script),
        "--",
        process.execPath,
        MINIBOX_JS,
        "--root",
        box.root,
        "run",
        "--rm",
        "-it",
        IMAGE,
        "sh",
      ],
      { encoding: "utf8", timeout: 60_000 },
    );
    expect(r.stdout).toContain("hello-42");
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+/);
    expect(r.status, r.stdout).toBe(3);
  });
});

describe("--trace", () => {
  test("prints each kernel step in order, with timings", async () => {
    const r = await run(["--trace", "-m", "64m"], "true");
    expect(r.code, r.stderr).toBe(0);
    const order = [
      /image .*→ sha256:/,
      /write .*memory.limit_in_bytes = 67108864/,
      /mount overlay on .*rootfs type=overlay/,
      /clone\(CLONE_NEWNS\|.*CLONE_NEWUSER\|CLONE_NEWPID/,
      /write \/proc\/\{pid\}\/uid_map: 0 \d+ 65536/,
      /mount proc on .*\/proc type=proc/,
      /pivot_root to .*rootfs/,
      /sethostname [0-9a-f]{12}/,
      /capability bounding set: CHOWN/,
      /switch to uid 0, gid 0/,
      /execve \["true"\]/,
    ];
    let from = 0;
    for (const re of order) {
      const lines = r.stderr.split("\n");
      const at = lines.findIndex((l, i) => i >= from && re.test(l));
      expect(at, `${re} after line ${from}\n${r.stderr}`).toBeGreaterThanOrEqual(from);
      from = at;
    }
    expect(r.stderr).toMatch(/\[trace\s+[\d.]+ ms\]\s+[\d.]+ ms\s+mount overlay/);
  });
});

describe("nothing left behind", () => {
  test("50 runs, some killed with SIGKILL, leave no cgroup, container, mount or process", async () => {
    const containerCgroups = () =>
      execFileSync("find", ["/sys/fs/cgroup", "-path", "*minibox/*", "-type", "d"])
        .toString()
        .split("\n")
        .filter(Boolean);
    const cgroupsBefore = containerCgroups();
    const killed: number[] = [];
    for (let i = 0; i < 50; i++) {
      if (i % 10 === 9) {
        const { child, done } = box.spawn(["run", "--rm", IMAGE, "sleep", "30"]);
        await new Promise((r) => setTimeout(r, 400));
        child.kill("SIGKILL");
        await done;
        killed.push(i);
      } else {
        const r = await run([], "true");
        expect(r.code, r.stderr).toBe(0);
      }
    }
    // The next command sweeps what the killed ones could not clean.
    const last = await run([], "true");
    expect(last.code).toBe(0);
    expect(killed).toHaveLength(5);
    const containers = readdirSync(path.join(box.root, "containers")).filter((id) => {
      const state = JSON.parse(
        readFileSync(path.join(box.root, "containers", id, "state.json"), "utf8"),
      );
      return state.autoRemove !== false;
    });
    expect(containers).toEqual([]);
    // Compared with before the loop: anything else running minibox meanwhile is not ours.
    expect(containerCgroups().filter((c) => !cgroupsBefore.includes(c))).toEqual([]);
    const sleepers = execFileSync("sh", ["-c", "ps -eo args | grep -c '^sleep 30$' || true"])
      .toString()
      .trim();
    expect(sleepers).toBe("0");
  });
});
