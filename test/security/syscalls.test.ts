// The kernel's attack surface behind most container escapes of the last ten
// years, reached from inside a container the way the exploits start: the
// kernel keyring (not namespaced: shared with the host), a new user
// namespace and a mount in it, eBPF, perf events, userfaultfd, io_uring,
// ptrace of a host process, kexec, READ_IMPLIES_EXEC, AF_ALG and AF_VSOCK
// sockets, clone3, the x32 ABI. Each is refused by minibox's default seccomp
// filter with the errno docs/security.md gives, and opened only by the option
// that opens it in Docker (--cap-add SYS_PTRACE, --cap-add SYS_ADMIN);
// `seccomp=unconfined` and --privileged have no filter (Seccomp: 0), and the
// kernel's own answer, different from the filter's, shows the call got
// through. The attempts are made by a static C probe (test/support/sysprobe.c)
// bind-mounted into the container.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Sandbox, sandbox } from "../support/minibox.js";
import { buildStaticProgram, type StaticProgram } from "../support/static-program.js";
import { testEnv } from "../support/testenv.js";

const env = testEnv();
const IMAGE = `${env.registries.anon}/fixtures/base`;
const { EPERM, ENOSYS, ESRCH, EFAULT, EINVAL } = constants.errno;

interface Call {
  ret: number;
  errno: number;
}
/** attempt → step → what the call returned. */
type Attempts = Map<string, Map<string, Call>>;

/** A directory name no other test uses: the userns-mount target, looked for in the host's mounts. */
const TARGET = `/tmp/minibox-sysprobe-${process.pid}`;
const ATTEMPTS = [
  "keyring",
  `userns-mount ${TARGET}`,
  "bpf",
  "perf",
  "userfaultfd",
  "io-uring",
  "ptrace HOSTPID",
  "ptrace-child",
  "kexec",
  "personality",
  "af-alg",
  "vsock",
  "clone3",
  "x32",
];

let box: Sandbox;
let probe: StaticProgram | undefined;
let dir: string;
let hostSleep: ChildProcess;
const runs = new Map<string, Promise<Attempts>>();

beforeAll(async () => {
  box = sandbox();
  probe = buildStaticProgram("sysprobe");
  dir = probe.dir;
  // A process of the host's: the ptrace target, by its host PID.
  hostSleep = spawn("sleep", ["600"], { stdio: "ignore" });
  const r = await box.run(["pull", "-q", IMAGE]);
  expect(r.code, r.stderr).toBe(0);
});

afterAll(async () => {
  if (hostSleep.exitCode === null) {
    const exited = new Promise((resolve) => hostSleep.once("exit", resolve));
    hostSleep.kill("SIGKILL");
    await exited;
  }
  const ids = (await box.run(["ps", "-a", "-q"])).stdout.split("\n").filter(Boolean);
  if (ids.length) await box.run(["rm", "-f", ...ids]);
  box.cleanup();
  probe?.remove();
});

/** "== ATTEMPT" headers, then "STEP RET ERRNO" lines, as the run's script prints them. */
function parseAttempts(stdout: string): Attempts {
  const out: Attempts = new Map();
  let current = new Map<string, Call>();
  for (const line of stdout.split("\n")) {
    const header = /^== (\S+)/.exec(line);
    if (header) {
      current = new Map();
      out.set(header[1] as string, current);
    }
    const call = /^(\S+) (-?\d+) (\d+)$/.exec(line);
    if (call) current.set(call[1] as string, { ret: Number(call[2]), errno: Number(call[3]) });
  }
  return out;
}

/** Every attempt in one container run with `flags` (memoised: each option set runs once). */
function attempts(flags: string[] = []): Promise<Attempts> {
  const key = flags.join(" ");
  let run = runs.get(key);
  if (!run) {
    const script = ATTEMPTS.map((a) => a.replace("HOSTPID", String(hostSleep.pid)))
      .map((a) => `echo "== ${a}"; /probe/sysprobe ${a}`)
      .join("; ");
    run = box
      .run([
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        `${dir}:/probe:ro`,
        ...flags,
        IMAGE,
        "sh",
        "-c",
        `mkdir -p ${TARGET}; ${script}; /probe/sysprobe status`,
      ])
      .then((r) => {
        expect(r.code, r.stderr).toBe(0);
        const parsed = parseAttempts(r.stdout);
        parsed.set("status", new Map([["seccomp", seccompLine(r.stdout)]]));
        return parsed;
      });
    runs.set(key, run);
  }
  return run;
}

/** /proc/self/status's "Seccomp: N" as a Call (ret = N). */
function seccompLine(stdout: string): Call {
  const m = /^Seccomp:\s+(\d+)$/m.exec(stdout);
  return { ret: m ? Number(m[1]) : -1, errno: 0 };
}

/** What `step` of `attempt` returned; a step the probe did not reach is undefined. */
async function maybeCall(attempt: string, step: string, flags: string[] = []) {
  return (await attempts(flags)).get(attempt)?.get(step);
}

/** What `step` of `attempt` returned (it must have been made: `not.toEqual` alone would pass on nothing). */
async function call(attempt: string, step: string, flags: string[] = []): Promise<Call> {
  const c = await maybeCall(attempt, step, flags);
  if (!c) throw new Error(`no "${step}" line for attempt "${attempt}" with [${flags.join(" ")}]`);
  return c;
}

const refused = (errno: number): Call => ({ ret: -1, errno });
const FILTER_EPERM = refused(EPERM);
const UNCONFINED = ["--security-opt", "seccomp=unconfined"];
const PRIVILEGED = ["--privileged"];
const SYS_ADMIN = ["--cap-add", "SYS_ADMIN"];
const SYS_PTRACE = ["--cap-add", "SYS_PTRACE"];

/** The host uid the container's root is (the store's user namespace, made by the first run). */
const containerHostUid = (): number =>
  JSON.parse(readFileSync(path.join(box.root, "userns.json"), "utf8")).uid.hostID;

/** Keys the kernel holds for `uid` (/proc/key-users: "uid: usage nkeys/nikeys …"), 0 if none. */
function hostKeysOf(uid: number): number {
  const line = readFileSync("/proc/key-users", "utf8")
    .split("\n")
    .find((l) => l.trim().startsWith(`${uid}:`));
  return line ? Number(/\s(\d+)\/\d+\s/.exec(line)?.[1] ?? 0) : 0;
}

describe("kernel keyring (CVE-2016-0728: keyctl refcount overflow; keys are not namespaced)", () => {
  test("keyctl(JOIN_SESSION_KEYRING) and add_key are refused with EPERM; the host holds no key for the container's uid", async () => {
    expect(await call("keyring", "keyctl")).toEqual(FILTER_EPERM);
    expect(await call("keyring", "add_key")).toEqual(FILTER_EPERM);
    expect(hostKeysOf(containerHostUid())).toBe(0);
  });

  test("seccomp=unconfined: the keyring is reachable (what the filter prevents)", async () => {
    expect((await call("keyring", "keyctl", UNCONFINED)).errno).toBe(0);
  });
});

describe("unshare(CLONE_NEWUSER) then mount (CVE-2022-0185: fsconfig overflow reached from a new user namespace)", () => {
  const hostMountsAtTarget = () =>
    readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .filter((l) => l.includes(path.basename(TARGET)));

  test("refused with EPERM before any namespace exists; the host has no new mount", async () => {
    expect(await call(`userns-mount`, "unshare-user")).toEqual(FILTER_EPERM);
    expect(await maybeCall("userns-mount", "mount")).toBeUndefined();
    expect(hostMountsAtTarget()).toEqual([]);
  });

  test("--cap-add SYS_ADMIN opens the path, as in Docker: the tmpfs mount succeeds inside, not on the host", async () => {
    expect(await call("userns-mount", "unshare-user", SYS_ADMIN)).toEqual({ ret: 0, errno: 0 });
    expect(await call("userns-mount", "mount", SYS_ADMIN)).toEqual({ ret: 0, errno: 0 });
    expect(hostMountsAtTarget()).toEqual([]);
  });
});

describe("bpf(BPF_PROG_LOAD) (CVE-2021-3490, CVE-2020-8835: eBPF verifier bugs)", () => {
  test("refused with EPERM by the filter: the kernel never reads the attributes", async () => {
    expect(await call("bpf", "bpf")).toEqual(FILTER_EPERM);
    expect(await call("bpf", "bpf-unreadable-attr")).toEqual(FILTER_EPERM);
  });

  test.each([
    ["--cap-add SYS_ADMIN", SYS_ADMIN],
    ["seccomp=unconfined", UNCONFINED],
    ["--privileged", PRIVILEGED],
  ])("%s: the kernel is reached (EFAULT for an unreadable attr)", async (_, flags) => {
    expect(await call("bpf", "bpf-unreadable-attr", flags)).toEqual(refused(EFAULT));
  });
});

describe("perf_event_open (CVE-2013-2094: perf_swevent_init)", () => {
  test("refused with EPERM", async () => {
    expect(await call("perf", "perf_event_open")).toEqual(FILTER_EPERM);
  });

  test.each([
    ["--cap-add SYS_ADMIN", SYS_ADMIN],
    ["seccomp=unconfined", UNCONFINED],
  ])(
    "%s: the filter lets it through (the kernel's answer, not the filter's EPERM)",
    async (_, flags) => {
      expect(await call("perf", "perf_event_open", flags)).not.toEqual(FILTER_EPERM);
    },
  );
});

describe.each([
  [
    "userfaultfd (CVE-2021-22555 and others: userfaultfd stalls the kernel to win races)",
    "userfaultfd",
    "userfaultfd",
  ],
  ["io_uring_setup (CVE-2022-29582, CVE-2023-2598: io_uring)", "io-uring", "io_uring_setup"],
  [
    "personality(READ_IMPLIES_EXEC) (CVE-2009-1895: mmap_min_addr bypass)",
    "personality",
    "personality",
  ],
  ["socket(AF_ALG) (CVE-2017-17805: the kernel crypto API)", "af-alg", "socket"],
  ["socket(AF_VSOCK) (CVE-2021-26708: vsock races)", "vsock", "socket"],
  [
    "the x32 ABI (syscall numbers with __X32_SYSCALL_BIT: a second table the filter must not miss)",
    "x32",
    "x32-getppid",
  ],
])("%s", (_, attempt, step) => {
  test("refused with EPERM by default, and with SYS_ADMIN or SYS_PTRACE added", async () => {
    expect(await call(attempt, step)).toEqual(FILTER_EPERM);
    expect(await call(attempt, step, SYS_ADMIN)).toEqual(FILTER_EPERM);
    expect(await call(attempt, step, SYS_PTRACE)).toEqual(FILTER_EPERM);
  });

  test.each([
    ["seccomp=unconfined", UNCONFINED],
    ["--privileged", PRIVILEGED],
  ])("%s: no filter, the kernel answers", async (_, flags) => {
    expect(await call(attempt, step, flags)).not.toEqual(FILTER_EPERM);
  });
});

describe("ptrace(PTRACE_ATTACH) of a host process (CVE-2019-13272: ptrace credential handling)", () => {
  const tracerOfHostSleep = () =>
    /^TracerPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${hostSleep.pid}/status`, "utf8"))?.[1];

  test("refused with EPERM, for the host's process and one in the container alike; the host process is not traced", async () => {
    expect(await call("ptrace", "ptrace-attach")).toEqual(FILTER_EPERM);
    expect(await call("ptrace-child", "ptrace-attach")).toEqual(FILTER_EPERM);
    expect(tracerOfHostSleep()).toBe("0");
  });

  test("--cap-add SYS_PTRACE: a process in the same container can be traced; the host's is invisible (ESRCH)", async () => {
    expect(await call("ptrace-child", "ptrace-attach", SYS_PTRACE)).toEqual({ ret: 0, errno: 0 });
    expect(await call("ptrace-child", "ptrace-detach", SYS_PTRACE)).toEqual({ ret: 0, errno: 0 });
    expect(await call("ptrace", "ptrace-attach", SYS_PTRACE)).toEqual(refused(ESRCH));
    expect(tracerOfHostSleep()).toBe("0");
  });

  test("--privileged: no filter, but the host's process is still out of the PID namespace's reach", async () => {
    expect(await call("ptrace", "ptrace-attach", PRIVILEGED)).toEqual(refused(ESRCH));
    expect(tracerOfHostSleep()).toBe("0");
  });
});

describe("kexec_load (loading a new kernel)", () => {
  test("refused with EPERM by the filter", async () => {
    expect(await call("kexec", "kexec_load")).toEqual(FILTER_EPERM);
  });

  test("seccomp=unconfined: the kernel refuses it too (ENOSYS without kexec, EPERM without CAP_SYS_BOOT on the host)", async () => {
    const r = await call("kexec", "kexec_load", UNCONFINED);
    expect(r.ret).toBe(-1);
    expect([ENOSYS, EPERM]).toContain(r.errno);
  });
});

describe("clone3 (its flags are in memory the filter cannot read)", () => {
  test("ENOSYS, so that libc falls back to clone, whose namespace flags the filter checks", async () => {
    expect(await call("clone3", "clone3")).toEqual(refused(ENOSYS));
  });

  test("--cap-add SYS_ADMIN: allowed (the kernel's EINVAL for an empty clone_args)", async () => {
    expect(await call("clone3", "clone3", SYS_ADMIN)).toEqual(refused(EINVAL));
  });
});

describe("the filter is there: /proc/self/status", () => {
  test.each([
    ["the default", 2, []],
    ["--cap-add SYS_ADMIN", 2, SYS_ADMIN],
    ["--cap-add SYS_PTRACE", 2, SYS_PTRACE],
    ["seccomp=unconfined", 0, UNCONFINED],
    ["--privileged", 0, PRIVILEGED],
  ])("%s: Seccomp: %i", async (_, mode, flags) => {
    expect((await call("status", "seccomp", flags)).ret).toBe(mode);
  });

  test("exec: the exec'd process gets the container's filter (Seccomp: 2, keyctl refused)", async () => {
    const started = await box.run([
      "run",
      "-d",
      "--network",
      "none",
      "-v",
      `${dir}:/probe:ro`,
      IMAGE,
      "sleep",
      "60",
    ]);
    expect(started.code, started.stderr).toBe(0);
    const id = started.stdout.trim();
    const status = await box.run(["exec", id, "/probe/sysprobe", "status"]);
    expect(status.stdout).toMatch(/^Seccomp:\s+2$/m);
    const keyring = await box.run(["exec", "--privileged", id, "/probe/sysprobe", "keyring"]);
    expect(parseAttempts(`== keyring\n${keyring.stdout}`).get("keyring")?.get("keyctl")).toEqual(
      FILTER_EPERM,
    );
    await box.run(["rm", "-f", id]);
  });

  test("a build RUN step runs under the default filter (Seccomp: 2)", async () => {
    const context = mkdtempSync(path.join(tmpdir(), "minibox-sysprobe-build-"));
    try {
      writeFileSync(
        path.join(context, "Dockerfile"),
        `FROM ${IMAGE}\nRUN grep Seccomp: /proc/self/status > /seccomp.txt\nCMD ["cat", "/seccomp.txt"]\n`,
      );
      const built = await box.run(["build", "--network", "none", "-t", "sysprobe-build", context]);
      expect(built.code, built.stderr).toBe(0);
      const r = await box.run(["run", "--rm", "--network", "none", "sysprobe-build"]);
      expect(r.stdout).toMatch(/^Seccomp:\s+2$/m);
    } finally {
      rmSync(context, { recursive: true, force: true });
    }
  });
});
