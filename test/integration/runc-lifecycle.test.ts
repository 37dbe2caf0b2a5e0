// minibox-runc's container verbs on a real bundle (a busybox-static rootfs),
// driven as containerd's shim and conmon drive runc: create leaves the init
// waiting before its program, start releases it, state reads the kernel,
// exec joins it, kill signals it, delete removes everything; hooks get the
// state on stdin; the console socket receives the terminal; bad bundles get
// one line naming the field, and leave nothing in --root.
import { spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../support/minibox.js";
import {
  APPLETS,
  type Config,
  errorOf,
  MINIBOX_RUNC,
  runcHarness,
  until,
} from "../support/runc-bundle.js";

const { work, root, runc, withoutNode, bundle, state, cgroupDirs } =
  runcHarness("minibox-runc-life-");
// Whatever a failed test left: its containers (so the next test starts from
// an empty --root), then the files.
afterEach(() => {
  for (const id of existsSync(root) ? readdirSync(root) : []) runc(["delete", "--force", id]);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("minibox-runc: the container lifecycle", () => {
  it("run: the program's output and exit status; nothing left in --root", () => {
    const b = bundle("run", (c) => {
      c.process.args = ["sh", "-c", "echo hello from $(hostname); exit 3"];
    });
    const r = runc(["run", "--bundle", b, "r1"]);
    expect(r.stdout).toBe("hello from minibox\n");
    expect(r.code).toBe(3);
    expect(readdirSync(root)).toEqual([]);
  });

  it("mount propagation options are applied: an rshared bind is a shared mount inside", () => {
    const data = path.join(work, "shared-data");
    mkdirSync(data, { recursive: true });
    const b = bundle("propagation", (c) => {
      c.mounts.push({ destination: "/shared", source: data, options: ["rbind", "rshared"] });
      c.mounts.push({ destination: "/private", source: data, options: ["rbind", "rprivate"] });
      c.process.args = ["sh", "-c", "grep -E ' /(shared|private) ' /proc/self/mountinfo"];
    });
    const r = runc(["run", "--bundle", b, "m1"]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines.find((l) => l.includes(" /shared "))).toMatch(/ shared:\d+/);
    expect(lines.find((l) => l.includes(" /private "))).not.toMatch(/ (shared|master):\d+/);
  });

  it("linux.rootfsPropagation is applied to the container's /", () => {
    for (const [propagation, shown] of [
      ["rshared", / shared:\d+ /],
      ["unbindable", / unbindable /],
    ] as const) {
      const b = bundle(`rootprop-${propagation}`, (c) => {
        c.linux.rootfsPropagation = propagation;
        // The line whose mount point (5th field) is /.
        c.process.args = [
          "sh",
          "-c",
          "grep -E '^[0-9]+ [0-9]+ [0-9:]+ [^ ]+ / ' /proc/self/mountinfo",
        ];
      });
      const r = runc(["run", "--bundle", b, "rp"]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(shown);
    }
  });

  it("namespaces given by path are joined (mount, uts with the hostname set there, ipc); the rest are new", async () => {
    // The namespaces to join: a process of the test's own, in new ones.
    const holder = spawn("unshare", ["--mount", "--uts", "--ipc", "--fork", "sleep", "60"], {
      stdio: "ignore",
    });
    try {
      const children = `/proc/${holder.pid}/task/${holder.pid}/children`;
      await until(() => readFileSync(children, "utf8").trim() !== "", "unshare's child");
      const pid = Number(readFileSync(children, "utf8").trim());
      const ns = (p: number, type: string) => readlinkSync(`/proc/${p}/ns/${type}`);
      const b = bundle("joined", (c) => {
        c.hostname = "joined-host";
        c.process.args = ["sleep", "60"];
        for (const n of c.linux.namespaces) {
          const name = { mount: "mnt", uts: "uts", ipc: "ipc" }[n.type as string];
          if (name) n.path = `/proc/${pid}/ns/${name}`;
        }
      });
      const created = runc(["create", "--bundle", b, "j1"]);
      expect(created.code, created.stderr).toBe(0);
      const init = state("j1").pid;
      for (const type of ["mnt", "uts", "ipc"]) expect(ns(init, type)).toBe(ns(pid, type));
      expect(ns(init, "net")).not.toBe(ns(pid, "net"));
      expect(ns(init, "pid")).not.toBe(ns(process.pid, "pid"));
      // runc sets the hostname in a joined uts namespace too: the holder sees it.
      const hostname = spawnSync("nsenter", ["-t", String(pid), "-u", "hostname"], {
        encoding: "utf8",
      });
      expect(hostname.stdout.trim()).toBe("joined-host");
      expect(runc(["delete", "--force", "j1"]).code).toBe(0);
    } finally {
      holder.kill("SIGKILL");
    }
  });

  it("a user namespace from uidMappings/gidMappings: root inside is the mapped id outside", () => {
    // A range no minibox container uses (minibox's own start at 1048576).
    const HOST_ID = 3_000_000;
    const b = bundle("userns", (c) => {
      c.linux.namespaces.push({ type: "user" });
      c.linux.uidMappings = [{ containerID: 0, hostID: HOST_ID, size: 65536 }];
      c.linux.gidMappings = [{ containerID: 0, hostID: HOST_ID, size: 65536 }];
      c.process.args = [
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; touch /tmp/x && stat -c %u /tmp/x",
      ];
      c.mounts.push({ destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid"] });
    });
    const r = runc(["run", "--bundle", b, "u1"]);
    expect(r.code, r.stderr).toBe(0);
    const [uid, map, owner] = r.stdout.trim().split("\n");
    expect(uid).toBe("0");
    expect(map?.trim().split(/\s+/)).toEqual(["0", String(HOST_ID), "65536"]);
    expect(owner).toBe("0");
    expect(readdirSync(root)).toEqual([]);
  });

  it("create waits before the program; start runs it; exec joins it; kill and delete end it", async () => {
    const b = bundle("life", (c) => {
      c.process.args = ["sh", "-c", "touch /tmp/started; exec sleep 60"];
      c.linux.resources = { ...c.linux.resources, memory: { limit: 64 * 1024 * 1024 } };
    });
    const pidFile = path.join(work, "life.pid");
    const created = runc(["create", "--bundle", b, "--pid-file", pidFile, "c1"]);
    expect(created.code, created.stderr).toBe(0);
    const s = state("c1");
    expect(s).toMatchObject({ id: "c1", status: "created", bundle: b });
    expect(Number(readFileSync(pidFile, "utf8"))).toBe(s.pid);
    // The init exists, its program has not run.
    expect(existsSync(`/proc/${s.pid}`)).toBe(true);
    expect(existsSync(path.join(b, "rootfs/tmp/started"))).toBe(false);
    // linux.resources applied before the program runs.
    const memory = cgroupDirs("c1").find((d) => d.includes("/memory/"));
    expect(readFileSync(`${memory}/memory.limit_in_bytes`, "utf8").trim()).toBe("67108864");

    expect(runc(["start", "c1"]).code).toBe(0);
    await until(() => existsSync(path.join(b, "rootfs/tmp/started")), "the program to run");
    expect(state("c1").status).toBe("running");
    expect(errorOf(runc(["start", "c1"]).stderr)).toBe("cannot start an already running container");

    // exec, flag form: in the container's namespaces (its hostname, its PID 1).
    const e = runc(["exec", "c1", "sh", "-c", "hostname; cat /proc/1/comm; exit 5"]);
    expect(e.stdout).toBe("minibox\nsleep\n");
    expect(e.code).toBe(5);
    // exec --process --detach, as the shim does: the process runs on, its PID in the pid file.
    const proc = path.join(work, "process.json");
    writeFileSync(
      proc,
      JSON.stringify({
        user: { uid: 1000, gid: 1000 },
        args: ["sh", "-c", "id > /tmp/id"],
        env: ["PATH=/bin"],
        cwd: "/",
      }),
    );
    const execPid = path.join(work, "exec.pid");
    const d = runc(["exec", "--process", proc, "--detach", "--pid-file", execPid, "c1"]);
    expect(d.code, d.stderr).toBe(0);
    expect(Number(readFileSync(execPid, "utf8"))).toBeGreaterThan(1);
    await until(() => existsSync(path.join(b, "rootfs/tmp/id")), "the exec'd process");
    await until(
      () => readFileSync(path.join(b, "rootfs/tmp/id"), "utf8").includes("gid"),
      "id's output",
    );
    expect(readFileSync(path.join(b, "rootfs/tmp/id"), "utf8")).toBe("uid=1000 gid=1000\n");

    const notStopped = runc(["delete", "c1"]);
    expect(notStopped.code).toBe(1);
    expect(errorOf(notStopped.stderr)).toBe(
      "cannot delete container c1 that is not stopped: running",
    );

    const dirs = cgroupDirs("c1");
    expect(runc(["kill", "c1", "KILL"]).code).toBe(0);
    await until(() => state("c1").status === "stopped", "the container to stop");
    expect(errorOf(runc(["kill", "c1"]).stderr)).toBe("container not running");
    expect(runc(["delete", "c1"]).code).toBe(0);
    expect(readdirSync(root)).toEqual([]);
    for (const dir of dirs) expect(existsSync(dir), dir).toBe(false);
    expect(errorOf(runc(["state", "c1"]).stderr)).toBe("container does not exist");
  });

  it("list shows each container with its status; delete --force ends a running one", () => {
    const b = bundle("list", (c) => {
      c.process.args = ["sleep", "60"];
    });
    expect(runc(["create", "--bundle", b, "l1"]).code).toBe(0);
    const table = runc(["list"]).stdout.split("\n");
    expect(table[0]).toMatch(/^ID\s+PID\s+STATUS\s+BUNDLE\s+CREATED\s+OWNER$/);
    expect(table[1]).toMatch(new RegExp(`^l1\\s+\\d+\\s+created\\s+${b}\\s`));
    const json = JSON.parse(runc(["list", "--format", "json"]).stdout);
    expect(json).toMatchObject([{ id: "l1", status: "created", bundle: b }]);
    expect(runc(["start", "l1"]).code).toBe(0);
    const pid = state("l1").pid;
    expect(runc(["delete", "--force", "l1"]).code).toBe(0);
    expect(
      existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/cmdline`, "utf8"),
    ).toBeFalsy();
    expect(readdirSync(root)).toEqual([]);
  });

  it("hooks get the state on stdin, in order; poststop runs at delete", async () => {
    const log = path.join(work, "hooks.log");
    const hook = (name: string) => ({
      path: "/bin/sh",
      args: ["sh", "-c", `cat > ${log}.${name}; echo ${name} >> ${log}`],
    });
    const b = bundle("hooks", (c) => {
      c.process.args = ["true"];
      c.hooks = {
        prestart: [hook("prestart")],
        createRuntime: [hook("createRuntime")],
        poststart: [hook("poststart")],
        poststop: [hook("poststop")],
      };
    });
    APPLETS.push("true");
    symlinkSync("busybox", path.join(b, "rootfs", "bin", "true"));
    expect(runc(["create", "--bundle", b, "h1"]).code).toBe(0);
    const created = JSON.parse(readFileSync(`${log}.prestart`, "utf8"));
    expect(created).toMatchObject({
      id: "h1",
      status: "created",
      bundle: b,
      pid: state("h1").pid,
    });
    expect(runc(["start", "h1"]).code).toBe(0);
    await until(() => state("h1").status === "stopped", "the program to end");
    expect(runc(["delete", "h1"]).code).toBe(0);
    expect(readFileSync(log, "utf8")).toBe("prestart\ncreateRuntime\npoststart\npoststop\n");
    expect(JSON.parse(readFileSync(`${log}.poststop`, "utf8"))).toMatchObject({
      id: "h1",
      status: "stopped",
    });
  });

  it("--console-socket: the pty master goes to the caller, the program's terminal is a pty", async () => {
    const b = bundle("tty", (c) => {
      c.process.terminal = true;
      c.process.args = ["sh", "-c", "tty; echo hi-from-tty"];
    });
    const sock = path.join(work, "console.sock");
    const ready = path.join(work, "console.ready");
    const receiver = spawn("python3", [
      path.join(REPO_ROOT, "test/support/console-socket.py"),
      sock,
      ready,
    ]);
    let output = "";
    receiver.stdout.on("data", (d) => {
      output += d;
    });
    const exited = new Promise((r) => receiver.on("close", r));
    await until(() => existsSync(ready), "the console socket");
    const r = runc(["create", "--bundle", b, "--console-socket", sock, "t1"]);
    expect(r.code, r.stderr).toBe(0);
    expect(runc(["start", "t1"]).code).toBe(0);
    await exited;
    expect(output).toBe("/dev/pts/0\r\nhi-from-tty\r\n");
    await until(() => state("t1").status === "stopped", "the program to end");
    expect(runc(["delete", "t1"]).code).toBe(0);
  });
});

describe("minibox-runc: state, start, kill and delete without node (native/minibox-runc-fast)", () => {
  const ENTRY = path.join(REPO_ROOT, "dist", "minibox.mjs");
  /** The same call answered by node alone (the TypeScript runtime). */
  function viaNode(args: string[]) {
    const r = spawnSync("node", [ENTRY, "runtime", "--root", root, ...args], { encoding: "utf8" });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it("answers the lifecycle's cheap verbs itself, with node's output to the byte", async () => {
    const b = bundle("fast", (c) => {
      c.process.args = ["sleep", "60"];
      c.annotations = { "org.example/key": 'a "quoted" value' };
    });
    expect(runc(["create", "--bundle", b, "n1"]).code).toBe(0);
    const created = withoutNode(["state", "n1"]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toBe(viaNode(["state", "n1"]).stdout);
    expect(JSON.parse(created.stdout)).toMatchObject({
      status: "created",
      annotations: { "org.example/key": 'a "quoted" value' },
    });

    expect(withoutNode(["start", "n1"]).code).toBe(0);
    const running = withoutNode(["state", "n1"]);
    expect(JSON.parse(running.stdout).status).toBe("running");
    expect(running.stdout).toBe(viaNode(["state", "n1"]).stdout);

    const dirs = cgroupDirs("n1");
    expect(withoutNode(["kill", "n1", "SIGKILL"]).code).toBe(0);
    await until(
      () => JSON.parse(withoutNode(["state", "n1"]).stdout).status === "stopped",
      "the kill",
    );
    expect(withoutNode(["state", "n1"]).stdout).toBe(viaNode(["state", "n1"]).stdout);
    expect(withoutNode(["delete", "n1"]).code).toBe(0);
    expect(readdirSync(root)).toEqual([]);
    for (const dir of dirs) expect(existsSync(dir), dir).toBe(false);
  });

  it("hands errors to node, which words them as runc", () => {
    // No node on PATH: the hand-over itself is what fails, naming node.
    expect(withoutNode(["state", "nosuch"]).stderr).toMatch(/minibox-runc: node/);
    const r = runc(["state", "nosuch"]);
    expect(r.code).toBe(1);
    expect(errorOf(r.stderr)).toBe("container does not exist");
  });
});

describe("minibox-runc: descriptors passed to the program", () => {
  /** `run ID` with `passed` open at 3, 4…; through `sh -c` so LISTEN_PID can be the runtime's own PID. */
  function runWithFds(id: string, b: string, passed: string[], shell: string) {
    const out = path.join(work, `${id}.out`);
    const err = path.join(work, `${id}.err`);
    // Read-write: what the program (or, wrongly, the runtime) writes there shows.
    const fds = [openSync(out, "w"), openSync(err, "w"), ...passed.map((f) => openSync(f, "r+"))];
    const r = spawnSync("sh", ["-c", shell, "sh", MINIBOX_RUNC, root, b, id], {
      stdio: ["ignore", ...fds],
    });
    for (const fd of fds) closeSync(fd);
    return { code: r.status, stdout: readFileSync(out, "utf8"), stderr: readFileSync(err, "utf8") };
  }

  it("--preserve-fds N: the caller's 3..3+N-1, and LISTEN_FDS (socket activation) with LISTEN_PID=1", () => {
    const b = bundle("fds", (c) => {
      c.process.args = [
        "sh",
        "-c",
        "cat <&3; cat <&4; echo LISTEN_FDS=$LISTEN_FDS LISTEN_PID=$LISTEN_PID",
      ];
    });
    const files = ["three", "four"].map((name) => {
      const f = path.join(work, name);
      writeFileSync(f, `${name}\n`);
      return f;
    });
    const preserved = runWithFds(
      "f1",
      b,
      files,
      '"$1" --root "$2" run --bundle "$3" --preserve-fds 2 "$4"',
    );
    expect(preserved).toMatchObject({ code: 0, stdout: "three\nfour\nLISTEN_FDS= LISTEN_PID=\n" });
    // runc's rule: LISTEN_FDS counts only when LISTEN_PID names the runtime itself.
    const activated = runWithFds(
      "f2",
      b,
      files,
      'LISTEN_FDS=2 LISTEN_PID=$$ exec "$1" --root "$2" run --bundle "$3" "$4"',
    );
    expect(activated).toMatchObject({
      code: 0,
      stdout: "three\nfour\nLISTEN_FDS=2 LISTEN_PID=1\n",
    });
    expect(readdirSync(root)).toEqual([]);
  });

  it("--preserve-fds 2 and a program that does not exist: runc's error to the caller, nothing into the passed files", () => {
    const b = bundle("fds-missing", (c) => {
      c.process.args = ["/bin/nosuch-program"];
    });
    const files = ["missing-three", "missing-four"].map((name) => {
      const f = path.join(work, name);
      writeFileSync(f, "");
      return f;
    });
    const r = runWithFds(
      "f3",
      b,
      files,
      '"$1" --root "$2" run --bundle "$3" --preserve-fds 2 "$4"',
    );
    expect(r.code).not.toBe(0);
    expect(errorOf(r.stderr)).toBe('exec: "/bin/nosuch-program": no such file or directory');
    // The executor's status pipe is not one of the passed descriptors: its error line went to minibox.
    for (const f of files) expect(readFileSync(f, "utf8"), f).toBe("");
    expect(readdirSync(root)).toEqual([]);
  });
});

describe("minibox-runc: bad input gets one line naming the field, and nothing is left", () => {
  const cases: [string, (c: Config) => void, RegExp][] = [
    ["no root", (c) => delete c.root, /config\.json: root: is required/],
    [
      "an unknown namespace type",
      (c) => c.linux.namespaces.push({ type: "time2" }),
      /config\.json: linux\.namespaces\[\d+\]\.type: unknown namespace type "time2"/,
    ],
    [
      "a relative mount destination",
      (c) => c.mounts.push({ destination: "tmp", type: "tmpfs", source: "tmpfs" }),
      /config\.json: mounts\[\d+\]\.destination: "tmp" must be an absolute path/,
    ],
    [
      "a prestart hook that fails",
      (c) => {
        c.hooks = {
          prestart: [{ path: "/bin/sh", args: ["sh", "-c", "echo no way >&2; exit 4"] }],
        };
      },
      /prestart hook #0 \(\/bin\/sh\) failed: exit status 4: no way/,
    ],
    [
      "a namespace path of another type",
      (c) => {
        const uts = c.linux.namespaces.find((n: Config) => n.type === "uts");
        uts.path = `/proc/${process.pid}/ns/ipc`;
      },
      new RegExp(`/proc/${process.pid}/ns/ipc is not a uts namespace`),
    ],
    [
      "no mount namespace",
      (c) => {
        c.linux.namespaces = c.linux.namespaces.filter((n: Config) => n.type !== "mount");
      },
      /config\.json: linux\.namespaces: minibox-runc needs a mount namespace/,
    ],
  ];
  for (const [what, edit, message] of cases) {
    it(what, () => {
      const b = bundle(`bad-${what.replace(/\W+/g, "-")}`, edit);
      const r = runc(["create", "--bundle", b, "bad"]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(errorOf(r.stderr)).toMatch(message);
      expect(existsSync(root) ? readdirSync(root) : []).toEqual([]);
    });
  }

  it("a container ID with / or ..", () => {
    const b = bundle("bad-id", () => undefined);
    for (const id of ["a/b", "..", "../x"]) {
      const r = runc(["create", "--bundle", b, id]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/invalid container ID format/);
    }
    expect(existsSync(root) ? readdirSync(root) : []).toEqual([]);
  });
});
