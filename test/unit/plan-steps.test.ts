import { describe, expect, it } from "vitest";
import { OPS, type Op, type Step, stepFields, toPlan } from "../../src/runtime/plan/steps.js";
import { serialisePlan } from "../../src/runtime/plan.js";

/** The text protocol native/minibox-exec reads: op → [fewest, most] fields. */
const PROTOCOL: Record<Op, [number, number]> = {
  "warm-cgroup": [1, 1],
  mountns: [0, 0],
  root: [1, 1],
  base: [1, 1],
  "idmap-userns": [2, 2],
  "idmap-mount": [2, 2],
  mount: [5, 5],
  mkdir: [2, 4],
  touch: [2, 4],
  mknod: [4, 4],
  chown: [3, 3],
  symlink: [2, 2],
  "remount-ro": [1, 1],
  pty: [0, 0],
  log: [4, 4],
  "exit-file": [1, 1],
  "on-exit": [1, Number.POSITIVE_INFINITY],
  health: [10, 10],
  clone: [1, 1],
  write: [2, 2],
  "report-pid": [0, 0],
  "wait-go": [0, 0],
  veth: [5, 5],
  "hold-port": [3, 3],
  unshare: [1, 1],
  user: [2, 2],
  "stdin-null": [0, 0],
  mask: [2, 2],
  pivot_root: [1, 1],
  console: [0, 0],
  sethostname: [1, 1],
  setdomainname: [1, 1],
  ifup: [1, 1],
  netif: [3, 3],
  "route-default": [1, 2],
  chdir: [1, 1],
  rlimit: [3, 3],
  groups: [0, Number.POSITIVE_INFINITY],
  bounding: [1, 1],
  caps: [3, 4],
  "no-new-privs": [0, 0],
  seccomp: [1, 1],
  closefds: [0, 0],
  env: [1, 1],
  init: [0, 0],
  exec: [1, Number.POSITIVE_INFINITY],
  setns: [2, Number.POSITIVE_INFINITY],
  "join-ns": [2, 2],
  "exec-fifo": [1, 1],
  "console-socket": [1, 1],
  "wait-start": [0, 0],
  "pass-fds": [1, 1],
};

describe("OPS: the executor's text protocol", () => {
  it("names exactly the executor's ops, each with its field count", () => {
    expect(Object.keys(OPS).sort()).toEqual(Object.keys(PROTOCOL).sort());
    for (const [op, arity] of Object.entries(PROTOCOL)) {
      expect(OPS[op as Op].arity, op).toEqual(arity);
    }
  });

  it("writes each op's fields in the executor's order", () => {
    const d = { describe: "" };
    const cases: [Step, string[]][] = [
      [
        { op: "mount", source: "", target: "/t", fstype: "", flags: 0x1021, data: "", ...d },
        ["-", "/t", "-", "0x1021", "-"],
      ],
      [{ op: "mkdir", path: "/d", mode: 0o755, ...d }, ["/d", "0755"]],
      [
        { op: "touch", path: "/f", mode: 0o644, owner: { uid: 5, gid: 6 }, ...d },
        ["/f", "0644", "5", "6"],
      ],
      [
        { op: "mknod", path: "/n", mode: 0o20666, major: 1, minor: 3, ...d },
        ["/n", "020666", "1", "3"],
      ],
      [{ op: "symlink", target: "pts/ptmx", path: "/p", ...d }, ["pts/ptmx", "/p"]],
      [{ op: "clone", flags: 0x20020000, ...d }, ["0x20020000"]],
      [{ op: "clone", flags: 0, ...d }, ["0"]],
      [{ op: "unshare", flags: 0x2000000, ...d }, ["0x2000000"]],
      [{ op: "groups", gids: [], ...d }, []],
      [{ op: "seccomp", program: "060000000000ff7f", ...d }, ["060000000000ff7f"]],
      [{ op: "bounding", keep: ["CAP_CHOWN", "CAP_KILL"], ...d }, ["21"]],
      [
        { op: "caps", effective: ["CAP_KILL"], permitted: [], inheritable: [], ...d },
        ["20", "0", "0"],
      ],
      [{ op: "rlimit", resource: 7, soft: 10, hard: 20, ...d }, ["7", "10", "20"]],
      [{ op: "setns", pid: 9, namespaces: ["user", "mnt"], ...d }, ["9", "user", "mnt"]],
      [
        { op: "log", file: "/l", maxSize: 0, maxFiles: 1, stream: "pipes", ...d },
        ["/l", "0", "1", "pipes"],
      ],
      [
        { op: "veth", hostIf: "mbx1", peerIf: "eth0", pid: "{pid}", bridge: "br0", mtu: 0, ...d },
        ["mbx1", "eth0", "{pid}", "br0", "0"],
      ],
      [
        { op: "veth", hostIf: "mbx1", peerIf: "eth0", pid: 42, mtu: 1500, ...d },
        ["mbx1", "eth0", "42", "-", "1500"],
      ],
      [
        { op: "netif", ifname: "eth0", mac: "02:42:0a:00:00:02", address: "10.0.0.2/24", ...d },
        ["eth0", "02:42:0a:00:00:02", "10.0.0.2/24"],
      ],
      [{ op: "netif", ifname: "eth0", address: "10.0.0.2/24", ...d }, ["eth0", "-", "10.0.0.2/24"]],
      [{ op: "route-default", gateway: "10.0.0.1", ...d }, ["10.0.0.1"]],
      [{ op: "route-default", gateway: "10.0.0.1", ifname: "eth0", ...d }, ["10.0.0.1", "eth0"]],
    ];
    for (const [step, fields] of cases) expect(stepFields(step), step.op).toEqual(fields);
  });

  it("refuses a step whose field count the executor would not accept", () => {
    expect(() => stepFields({ op: "exec", argv: [], describe: "" })).toThrow(/exec has 0 fields/);
  });
});

describe("toPlan and serialisePlan", () => {
  const plan = toPlan({
    setup: [{ op: "clone", flags: 0, describe: "fork" }],
    parent: [{ op: "report-pid", describe: "pid" }],
    child: [{ op: "exec", argv: ["sh", "-c", "a\tb\\c\nd"], describe: "run" }],
  });

  it("gives every step its fields as args", () => {
    expect(plan.child[0]?.args).toEqual(["sh", "-c", "a\tb\\c\nd"]);
  });

  it("writes setup, child, parent; escapes TAB, newline, backslash; names each line's step", () => {
    const { text, byLine } = serialisePlan(plan);
    expect(text).toBe(
      "[setup]\nclone\t0\n[child]\nexec\tsh\t-c\ta\\tb\\\\c\\nd\n[parent]\nreport-pid\n",
    );
    expect([...byLine].map(([line, s]) => [line, s.describe])).toEqual([
      [2, "fork"],
      [4, "run"],
      [6, "pid"],
    ]);
  });
});
