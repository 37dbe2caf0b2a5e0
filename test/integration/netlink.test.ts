// Netlink from scratch: minibox-net (the host-side helper) and the executor's
// network steps (veth, netif, route-default), each run inside a network
// namespace the test creates, so the host's own links are never touched and
// all traffic stays inside that namespace. Deleting the namespace afterwards
// deletes every link made in it.
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import type { Readable, Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { MiniboxError } from "../../src/errors.js";
import { netlinkHelper } from "../../src/runtime/network/netlink.js";
import { CLONE } from "../../src/runtime/plan/namespace-steps.js";
import { containerNetSteps, vethSteps } from "../../src/runtime/plan/network-steps.js";
import { type Step, toPlan } from "../../src/runtime/plan/steps.js";
import { serialisePlan } from "../../src/runtime/plan.js";
import { REPO_ROOT } from "../support/minibox.js";

const BUILD = path.join(REPO_ROOT, "native", "build");
const HELPER = path.join(BUILD, "minibox-net");
const EXECUTOR = path.join(BUILD, "minibox-exec");

let ns: string;
let bridge: string;
let subnet: string; // "10.X.Y"
let executors: ChildProcess[];

beforeEach(() => {
  const tag = randomBytes(4).toString("hex");
  ns = `mbt${tag}`;
  bridge = `mbt${tag}br`;
  subnet = `10.${100 + ((randomBytes(1)[0] ?? 0) % 100)}.${randomBytes(1)[0] ?? 0}`;
  executors = [];
  execFileSync("ip", ["netns", "add", ns]);
});

afterEach(() => {
  for (const child of executors)
    if (child.exitCode === null && child.pid) process.kill(child.pid, "SIGKILL");
  execFileSync("ip", ["netns", "del", ns]);
});

/** Run a command inside the test's namespace. */
function inNs(argv: string[]) {
  return spawnSync("ip", ["netns", "exec", ns, ...argv], { encoding: "utf8" });
}

function ipJson<T>(argv: string[]): T {
  const r = inNs(["ip", "-j", ...argv]);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

interface AddrInfo {
  family: string;
  local: string;
  prefixlen: number;
}
interface Link {
  ifname: string;
  flags: string[];
  address: string;
  master?: string;
  addr_info?: AddrInfo[];
}

const helper = (...args: string[]) => inNs([HELPER, ...args]);

describe("minibox-net", () => {
  test("bridge: created with its address and up; a second call changes nothing; del", () => {
    const first = helper("bridge", bridge, `${subnet}.1/24`, "1500");
    expect([first.status, first.stdout, first.stderr]).toEqual([0, "", ""]);
    const again = helper("bridge", bridge, `${subnet}.1/24`, "1500");
    expect([again.status, again.stdout, again.stderr]).toEqual([0, "", ""]);
    const [link] = ipJson<Link[]>(["addr", "show", "dev", bridge]);
    expect(link?.flags).toContain("UP");
    const v4 = link?.addr_info?.filter((a) => a.family === "inet");
    expect(v4?.map((a) => [a.local, a.prefixlen])).toEqual([[`${subnet}.1`, 24]]);
    const [details] = ipJson<{ linkinfo?: { info_kind: string }; mtu: number }[]>([
      "-d",
      "link",
      "show",
      "dev",
      bridge,
    ]);
    expect([details?.linkinfo?.info_kind, details?.mtu]).toEqual(["bridge", 1500]);

    expect(helper("link-exists", bridge).status).toBe(0);
    expect(helper("del", bridge).status).toBe(0);
    expect(helper("link-exists", bridge).status).toBe(2);
    const missing = helper("del", bridge);
    expect([missing.status, missing.stderr]).toEqual([0, ""]);
  });

  test("the TypeScript wrapper, run inside the namespace", () => {
    const net = netlinkHelper(["ip", "netns", "exec", ns, HELPER]);
    net.ensureBridge(bridge, `${subnet}.1/24`, 0);
    net.ensureBridge(bridge, `${subnet}.1/24`, 0);
    expect(net.linkExists(bridge)).toBe(true);
    net.deleteLink(bridge);
    expect(net.linkExists(bridge)).toBe(false);
    net.deleteLink(bridge);
    expect(() => net.ensureBridge("lo", `${subnet}.1/24`, 0)).toThrow(
      new MiniboxError("lo exists and is not a bridge (its kind: none)"),
    );
  });

  test("errors: one clear line on stderr, exit 1", () => {
    const cases: [string[], RegExp][] = [
      [
        ["bridge", "mbt0123456789abc", "10.1.2.1/24", "0"],
        /^invalid interface name "mbt0123456789abc"/,
      ],
      [["bridge", bridge, "10.1.2.300/24", "0"], /^invalid address "10.1.2.300\/24"/],
      [["bridge", bridge, "10.1.2.1/33", "0"], /^invalid address/],
      [["bridge", bridge, "10.1.2.1", "0"], /^invalid address/],
      [["bridge", bridge, "10.1.2.1/24", "12"], /^invalid MTU "12"/],
      [["bridge", "lo", "10.1.2.1/24", "0"], /^lo exists and is not a bridge/],
      [["del", "lo"], /^netlink RTM_DELLINK lo: Operation not supported\n$/],
      [["frobnicate"], /^usage: minibox-net/],
    ];
    for (const [args, message] of cases) {
      const r = helper(...args);
      expect(r.status, args.join(" ")).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr.endsWith("\n") && r.stderr.split("\n").length, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toMatch(message);
    }
    expect(helper("link-exists", bridge).status).toBe(2); // nothing was created
  });
});

interface ExecutorRun {
  child: ChildProcess;
  /** Resolves with the container's output so far once `marker` appears in it. */
  output: (marker: string) => Promise<string>;
  done: Promise<{ code: number | null; status: string[]; stdout: string }>;
}

/** The executor inside the test's namespace (its "host"), fed as src/runtime/executor.ts does: 3 plan, 4 status, 5 control. */
function runExecutor(sections: { setup: Step[]; parent: Step[]; child: Step[] }): ExecutorRun {
  const { text } = serialisePlan(toPlan(sections));
  const child = spawn("ip", ["netns", "exec", ns, EXECUTOR], {
    stdio: ["ignore", "pipe", "inherit", "pipe", "pipe", "pipe"],
  });
  executors.push(child);
  let status = "";
  let stdout = "";
  const waiting: [string, (s: string) => void][] = [];
  (child.stdio[4] as Readable).on("data", (d) => {
    status += d;
  });
  child.stdout?.on("data", (d) => {
    stdout += d;
    for (const [marker, resolve] of waiting) if (stdout.includes(marker)) resolve(stdout);
  });
  const pipes = child.stdio as unknown as (Readable | Writable)[];
  (pipes[3] as Writable).end(text);
  (pipes[5] as Writable).end();
  const done = new Promise<{ code: number | null; status: string[]; stdout: string }>((resolve) => {
    child.on("close", (code) => resolve({ code, status: status.trimEnd().split("\n"), stdout }));
  });
  const output = (marker: string) =>
    new Promise<string>((resolve, reject) => {
      waiting.push([marker, resolve]);
      done.then((r) => reject(new Error(`executor ended (${r.code}): ${r.status.join(" | ")}`)));
    });
  return { child, output, done };
}

const clone: Step = { op: "clone", flags: CLONE.NEWNET, describe: "clone(CLONE_NEWNET)" };
const exec = (script: string): Step => ({
  op: "exec",
  argv: ["/bin/sh", "-c", script],
  describe: "run",
});

describe("the executor's network steps", () => {
  test("veth on the bridge, eth0 with its MAC and address, default route; reachable from the namespace", async () => {
    expect(helper("bridge", bridge, `${subnet}.1/24`, "1500").status).toBe(0);
    const hostIf = `${ns}v`;
    const address = `${subnet}.2`;
    const run = runExecutor({
      setup: [clone],
      parent: vethSteps({ hostIf, bridge, mtu: 1500 }),
      child: [
        { op: "ifup", value: "lo", describe: "lo up" },
        ...containerNetSteps({ address, prefix: 24, gateway: `${subnet}.1` }),
        exec(
          "ip -j addr show dev eth0; echo; ip -j route; echo; echo READY; " +
            "exec busybox nc -l -p 8080 -e echo hello-from-the-container",
        ),
      ],
    });
    const out = await run.output("READY");
    const [addrJson, routeJson] = out.split("\n").filter(Boolean);
    const [eth0] = JSON.parse(addrJson ?? "") as Link[];
    expect(eth0?.address).toBe(
      `02:42:0a:${[...subnet.split(".").slice(1), "2"].map((n) => Number(n).toString(16).padStart(2, "0")).join(":")}`,
    );
    expect(eth0?.flags).toContain("UP");
    expect(
      eth0?.addr_info?.filter((a) => a.family === "inet").map((a) => [a.local, a.prefixlen]),
    ).toEqual([[address, 24]]);
    const routes = JSON.parse(routeJson ?? "") as { dst: string; gateway?: string; dev: string }[];
    expect(routes).toContainEqual(
      expect.objectContaining({ dst: "default", gateway: `${subnet}.1`, dev: "eth0" }),
    );

    // The host end: on the bridge, up.
    const [host] = ipJson<Link[]>(["link", "show", "dev", hostIf]);
    expect(host?.master).toBe(bridge);
    expect(host?.flags).toContain("UP");

    const ping = inNs(["busybox", "ping", "-c1", "-W2", address]);
    expect(ping.status, ping.stdout + ping.stderr).toBe(0);
    const nc = inNs(["busybox", "nc", "-w", "5", address, "8080"]);
    expect(nc.stdout).toBe("hello-from-the-container\n");
    const r = await run.done;
    expect(r.code).toBe(0);
    expect(r.status).toEqual(["started", "exit 0"]);
  });

  test("the same inside a user namespace: the init, root of its own userns, sets up its netns", async () => {
    expect(helper("bridge", bridge, `${subnet}.1/24`, "0").status).toBe(0);
    const map = (file: string): Step => ({
      op: "write",
      path: `/proc/{pid}/${file}`,
      data: "0 0 65536",
      describe: file,
    });
    const run = runExecutor({
      setup: [{ op: "clone", flags: CLONE.NEWNET | CLONE.NEWUSER, describe: "clone" }],
      parent: [map("uid_map"), map("gid_map"), ...vethSteps({ hostIf: `${ns}v`, bridge, mtu: 0 })],
      child: [
        { op: "user", uid: 0, gid: 0, describe: "root of the userns" },
        ...containerNetSteps({ address: `${subnet}.3`, prefix: 24, gateway: `${subnet}.1` }),
        exec(
          "ip -o -4 addr show dev eth0; ip route show default; echo READY; " +
            "exec busybox nc -l -p 8080 -e echo hello",
        ),
      ],
    });
    const out = await run.output("READY");
    expect(out).toContain(`inet ${subnet}.3/24`);
    expect(out).toContain(`default via ${subnet}.1 dev eth0`);
    const ping = inNs(["busybox", "ping", "-c1", "-W2", `${subnet}.3`]);
    expect(ping.status, ping.stdout + ping.stderr).toBe(0);
    expect(inNs(["busybox", "nc", "-w", "5", `${subnet}.3`, "8080"]).stdout).toBe("hello\n");
    expect((await run.done).code).toBe(0);
  });

  test("a veth onto a missing bridge: the netlink request, the device and the errno; exit 125", async () => {
    const run = runExecutor({
      setup: [clone],
      parent: vethSteps({ hostIf: `${ns}v`, bridge, mtu: 0 }),
      child: [exec("true")],
    });
    const r = await run.done;
    expect(r.code).toBe(125);
    // ENODEV (19): line 6 is the veth step (after [setup], clone, [child], exec, [parent]).
    expect(r.status).toEqual([
      `error 6 veth netlink 19 RTM_GETLINK bridge ${bridge} (for veth ${ns}v)`,
    ]);
    expect(helper("link-exists", `${ns}v`).status).toBe(2);
  });

  test("a host end whose name is taken: RTM_NEWLINK veth … File exists", async () => {
    expect(helper("bridge", bridge, `${subnet}.1/24`, "0").status).toBe(0);
    const run = runExecutor({
      setup: [clone],
      parent: vethSteps({ hostIf: bridge, bridge, mtu: 0 }),
      child: [exec("true")],
    });
    const r = await run.done;
    expect(r.code).toBe(125);
    expect(r.status).toEqual([`error 6 veth netlink 17 RTM_NEWLINK veth ${bridge} (peer eth0)`]);
  });

  test("a gateway the container cannot reach: the kernel's refusal, in its words", async () => {
    const run = runExecutor({
      setup: [clone],
      parent: [],
      child: [
        { op: "ifup", value: "lo", describe: "lo up" },
        { op: "route-default", gateway: `${subnet}.1`, describe: "default route" },
        exec("true"),
      ],
    });
    const r = await run.done;
    expect(r.code).toBe(125);
    expect(r.status[0]).toMatch(
      new RegExp(`^error 5 route-default netlink \\d+ RTM_NEWROUTE default via ${subnet}\\.1`),
    );
  });
});
