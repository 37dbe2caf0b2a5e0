// `run -p` / `-P` on the real host: host ports held by the container's
// monitor, DNAT rules in the table `inet minibox`, loopback publishing
// through route_localnet and its guard, hairpin, UDP — and nothing left once
// the container stops, is removed, or loses its monitor to SIGKILL.
//
// Traffic goes only between the host's loopback, its containers and a "LAN"
// namespace this test creates, joined to the host by a veth on a /30 of
// 198.18.0.0/15. The LAN routes 127.0.0.1 to the host, as a machine on the
// host's segment could (moby #45610): it must not reach a port published on
// 127.0.0.1, and must reach one published on every interface.
//
// The bridge minibox0 and the table are host-wide and may be another test's
// at the same moment: this test removes only its own containers (which takes
// its rules with them) and checks only its own ports' rules.
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:http";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { currentFirewall } from "../../src/runtime/network/firewall.js";
import { oneLineError, REPO_ROOT, type Sandbox, sandbox } from "../support/minibox.js";
import { ip, linkExists, readSysctl, testPrefix } from "../support/netns.js";
import { testEnv } from "../support/testenv.js";

const env = testEnv();
const BASE = `${env.registries.anon}/fixtures/base`;
const P = testPrefix();
const IMAGE = `${P}-web:1`;
const LAN_NS = `${P}lan`;
const LAN_LINK = `${P}l0`;
const OCTET = 1 + ((randomBytes(1)[0] ?? 0) % 250);
const HOST_LAN_IP = `198.18.${OCTET}.1`;
const LAN_IP = `198.18.${OCTET}.2`;
const GREETING = `Hello from ${P}!\n`;
/** Fixed host ports for this run, below ip_local_port_range (so no random pick takes them). */
const BASE_PORT = 20000 + (randomBytes(2).readUInt16BE(0) % 9000);
const PORT = BASE_PORT;
const PORT2 = BASE_PORT + 1;
const UDP_PORT = BASE_PORT + 2;
const BUSY_PORT = BASE_PORT + 3;
const HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"];
const UDP_ECHO_C = path.join(REPO_ROOT, "test", "support", "udp-echo.c");

let box: Sandbox;
let dir: string;

async function runOk(args: string[]): Promise<string> {
  const r = await box.run(args);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

async function inspect(id: string) {
  return JSON.parse(await runOk(["inspect", id]))[0];
}

/** GET from the host's own stack: the body, or the error's code. */
function httpGet(host: string, port: number, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    const req = request({ host, port, path: "/greeting.txt", timeout: timeoutMs }, (res) => {
      let body = "";
      res.on("data", (d) => {
        body += d;
      });
      res.on("end", () => resolve(body));
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "timeout" })));
    req.on("error", (e: NodeJS.ErrnoException) => resolve(`error ${e.code}`));
    req.end();
  });
}

/** Until the container's server answers (it starts right after `run -d` returns). */
async function waitForHttp(host: string, port: number): Promise<string> {
  let last = "";
  for (let i = 0; i < 40; i++) {
    last = await httpGet(host, port, 1000);
    if (last === GREETING) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  return last;
}

/**
 * busybox wget inside the LAN namespace: the body, or "" when it could not
 * connect (bounded by spawnSync's timeout: the host's busybox wget crashes on -T).
 */
function lanGet(host: string, port: number): string {
  const r = spawnSync(
    "ip",
    [
      "netns",
      "exec",
      LAN_NS,
      "busybox",
      "wget",
      "-q",
      "-O",
      "-",
      `http://${host}:${port}/greeting.txt`,
    ],
    { encoding: "utf8", timeout: 4000 },
  );
  return r.status === 0 ? r.stdout : "";
}

/** Send `text` until the echo comes back (the server starts right after `run -d`); "" if it never does. */
async function udpEcho(host: string, port: number, text: string): Promise<string> {
  const sock = createSocket("udp4");
  let got = "";
  sock.on("message", (m) => {
    got = String(m);
  });
  for (let i = 0; i < 30 && got === ""; i++) {
    sock.send(text, port, host);
    await new Promise((r) => setTimeout(r, 150));
  }
  sock.close();
  return got;
}

/** The DNAT rules of table inet minibox that name this host port. */
function dnatRulesFor(port: number): unknown[] {
  const items = currentFirewall() ?? [];
  return items.filter((i) => {
    const rule = (i as { rule?: { chain: string; expr: unknown[] } }).rule;
    return rule?.chain === "ports" && JSON.stringify(rule.expr).includes(`"right":${port}`);
  });
}

/** Whether the host port can be bound now (nobody holds it). */
function portFree(port: number, proto: "tcp" | "udp" = "tcp", host = "0.0.0.0"): Promise<boolean> {
  return new Promise((resolve) => {
    if (proto === "udp") {
      const s = createSocket("udp4");
      s.once("error", () => resolve(false));
      s.bind(port, host, () => s.close(() => resolve(true)));
      return;
    }
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/** The socket inodes a process has open ("socket:[123]" links in /proc/PID/fd). */
function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    const link = spawnSync("readlink", [`/proc/${pid}/fd/${fd}`], {
      encoding: "utf8",
    }).stdout.trim();
    if (link.startsWith("socket:")) out.add(link);
  }
  return out;
}

/** Sockets both the monitor and the container's init hold: none, the held ports stay the monitor's. */
function sharedSockets(id: string): string[] {
  const state = JSON.parse(
    readFileSync(path.join(box.root, "containers", id, "state.json"), "utf8"),
  ) as { monitorPid: number; pid: number };
  const monitor = socketInodes(state.monitorPid);
  expect(monitor.size).toBeGreaterThan(0);
  return [...socketInodes(state.pid)].filter((s) => monitor.has(s));
}

function leases(): Record<string, string> {
  const dir = path.join(box.root, "networks");
  const out: Record<string, string> = {};
  for (const id of existsSync(dir) ? readdirSync(dir) : []) {
    const file = path.join(dir, id, "leases.json");
    if (existsSync(file)) Object.assign(out, JSON.parse(readFileSync(file, "utf8")));
  }
  return out;
}

/** Nothing of the container's ports left: no rule, nobody holding the port, no lease. */
async function expectPortGone(id: string, port: number, proto: "tcp" | "udp" = "tcp") {
  expect(dnatRulesFor(port)).toEqual([]);
  expect(await portFree(port, proto)).toBe(true);
  expect(Object.keys(leases())).not.toContain(id);
  expect(linkExists(`mbx${id.slice(0, 12)}`)).toBe(false);
}

function startLan(): void {
  ip("netns", "add", LAN_NS);
  ip("-n", LAN_NS, "link", "set", "lo", "up");
  ip("link", "add", LAN_LINK, "type", "veth", "peer", "name", "eth0", "netns", LAN_NS);
  ip("addr", "add", `${HOST_LAN_IP}/30`, "dev", LAN_LINK);
  ip("link", "set", LAN_LINK, "up");
  ip("-n", LAN_NS, "addr", "add", `${LAN_IP}/30`, "dev", "eth0");
  ip("-n", LAN_NS, "link", "set", "eth0", "up");
  // 127.0.0.1 routed to the host (CVE-2020-8558's attacker): the local table's
  // rule moves behind one of its own, and eth0 may carry 127/8.
  spawnSync("ip", [
    "netns",
    "exec",
    LAN_NS,
    "sh",
    "-c",
    "echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet",
  ]);
  ip(
    "-n",
    LAN_NS,
    "route",
    "add",
    "127.0.0.1/32",
    "via",
    HOST_LAN_IP,
    "dev",
    "eth0",
    "table",
    "100",
  );
  ip("-n", LAN_NS, "rule", "add", "pref", "10", "to", "127.0.0.1/32", "lookup", "100");
}

beforeAll(async () => {
  box = sandbox();
  dir = mkdtempSync(path.join(tmpdir(), `${P}-ctx-`));
  await runOk(["pull", "-q", BASE]);
  mkdirSync(path.join(dir, "web"));
  writeFileSync(path.join(dir, "web", "greeting.txt"), GREETING);
  execFileSync("cc", ["-static", "-O2", "-o", path.join(dir, "web", "udp-echo"), UDP_ECHO_C]);
  writeFileSync(
    path.join(dir, "web", "Dockerfile"),
    `FROM ${BASE}\nCOPY greeting.txt /www/\nCOPY udp-echo /bin/\nEXPOSE 8080\n`,
  );
  await runOk(["build", "-q", "-t", IMAGE, path.join(dir, "web")]);
  startLan();
});

afterAll(async () => {
  if (box) {
    const ids = (await box.run(["ps", "-aq"])).stdout.split("\n").filter(Boolean);
    if (ids.length > 0) await box.run(["rm", "-f", ...ids]);
    box.cleanup();
  }
  spawnSync("ip", ["netns", "del", LAN_NS]);
  if (linkExists(LAN_LINK)) spawnSync("ip", ["link", "del", LAN_LINK]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("run -p", () => {
  test("the talk's web server on 127.0.0.1: served to the host's loopback, not to the LAN; -p PORT2 reaches the LAN; hairpin", async () => {
    const r = await box.run([
      "run",
      "-d",
      "--network",
      "bridge",
      "--name",
      `${P}-server`,
      "-p",
      `127.0.0.1:${PORT}:8080`,
      "-p",
      `${PORT2}:8080`,
      IMAGE,
      ...HTTPD,
    ]);
    expect(r.code, r.stderr).toBe(0);
    // One warning for the port open on every interface, none for 127.0.0.1.
    const warnings = r.stderr.split("\n").filter((l) => l.includes("every interface"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`${PORT2}->8080/tcp`);
    expect(warnings[0]).toContain(`-p 127.0.0.1:${PORT2}:8080`);
    const id = r.stdout.trim();

    expect(await waitForHttp("127.0.0.1", PORT)).toBe(GREETING);
    // route_localnet on the bridge, and with it the guard.
    expect(readSysctl("net/ipv4/conf/minibox0/route_localnet")).toBe("1");
    expect(lanGet("127.0.0.1", PORT)).toBe("");
    expect(lanGet(HOST_LAN_IP, PORT2)).toBe(GREETING);
    // Docker answers the host's loopback on a port published on every interface too.
    expect(await httpGet("127.0.0.1", PORT2)).toBe(GREETING);
    // Hairpin: the container reaches its own published port through the host's address.
    const hairpin = await runOk([
      "exec",
      id,
      "timeout",
      "5",
      "wget",
      "-q",
      "-O",
      "-",
      `http://${HOST_LAN_IP}:${PORT2}/greeting.txt`,
    ]);
    expect(hairpin).toBe(GREETING);

    // The monitor holds both host ports; the container's processes do not.
    expect(await portFree(PORT, "tcp", "127.0.0.1")).toBe(false);
    expect(await portFree(PORT2)).toBe(false);
    expect(sharedSockets(id)).toEqual([]);

    const ps = await runOk(["ps"]);
    expect(ps).toContain(`0.0.0.0:${PORT2}->8080/tcp, 127.0.0.1:${PORT}->8080/tcp`);
    expect((await runOk(["port", `${P}-server`])).trim().split("\n")).toEqual([
      `8080/tcp -> 0.0.0.0:${PORT2}`,
      `8080/tcp -> 127.0.0.1:${PORT}`,
    ]);
    expect((await runOk(["port", `${P}-server`, "8080"])).trim()).toBe(
      `0.0.0.0:${PORT2}\n127.0.0.1:${PORT}`,
    );
    const info = await inspect(id);
    expect(info.NetworkSettings.Ports).toEqual({
      "8080/tcp": [
        { HostIp: "0.0.0.0", HostPort: String(PORT2) },
        { HostIp: "127.0.0.1", HostPort: String(PORT) },
      ],
    });
    expect(info.HostConfig.PortBindings).toEqual({
      "8080/tcp": [
        { HostIp: "127.0.0.1", HostPort: String(PORT) },
        { HostIp: "", HostPort: String(PORT2) },
      ],
    });

    await runOk(["stop", "-t", "1", id]);
    await expectPortGone(id, PORT);
    await expectPortGone(id, PORT2);
    expect(await runOk(["port", id])).toBe("");

    // start publishes the same ports again.
    await runOk(["start", id]);
    expect(await waitForHttp("127.0.0.1", PORT)).toBe(GREETING);
    await runOk(["rm", "-f", id]);
    await expectPortGone(id, PORT);
  });

  test("a port on one host address: reachable there from the LAN, and no route_localnet (nor guard) for it", async () => {
    const id = (
      await runOk([
        "run",
        "-d",
        "--network",
        "bridge",
        "-p",
        `${HOST_LAN_IP}:${PORT}:8080`,
        IMAGE,
        ...HTTPD,
      ])
    ).trim();
    expect(lanGet(HOST_LAN_IP, PORT)).toBe(GREETING);
    // Another container on the bridge may publish on loopback meanwhile (a concurrent test): only
    // check the setting when this container is the only one with ports.
    if (JSON.stringify(currentFirewall()).match(/"dport"/g)?.length === 1) {
      expect(readSysctl("net/ipv4/conf/minibox0/route_localnet")).toBe("0");
      expect(JSON.stringify(currentFirewall())).not.toContain('"guard"');
    }
    await runOk(["rm", "-f", id]);
    await expectPortGone(id, PORT);
  });

  test("UDP: a datagram to the published port reaches the container, and its reply comes back", async () => {
    const id = (
      await runOk([
        "run",
        "-d",
        // --init: PID 1 is the executor's own code (no execve); it must not hold the port either.
        "--init",
        "--network",
        "bridge",
        "-p",
        `127.0.0.1:${UDP_PORT}:5353/udp`,
        IMAGE,
        "udp-echo",
        "5353",
      ])
    ).trim();
    expect(await portFree(UDP_PORT, "udp", "127.0.0.1")).toBe(false);
    expect(sharedSockets(id)).toEqual([]);
    expect(await udpEcho("127.0.0.1", UDP_PORT, `ping ${P}\n`)).toBe(`ping ${P}\n`);
    // The monitor writes the log in batches: give it a moment.
    let logs = "";
    for (let i = 0; i < 20 && !logs.includes(`ping ${P}`); i++) {
      await new Promise((r) => setTimeout(r, 100));
      logs = await runOk(["logs", id]);
    }
    expect(logs).toContain(`ping ${P}`);
    expect((await runOk(["port", id])).trim()).toBe(`5353/udp -> 127.0.0.1:${UDP_PORT}`);
    await runOk(["rm", "-f", id]);
    await expectPortGone(id, UDP_PORT, "udp");
  });

  test("-P publishes the image's EXPOSE to a free port of ip_local_port_range; ps, port and inspect show it", async () => {
    const id = (await runOk(["run", "-d", "--network", "bridge", "-P", IMAGE, ...HTTPD])).trim();
    const line = (await runOk(["port", id, "8080/tcp"])).trim();
    const m = /^0\.0\.0\.0:(\d+)$/.exec(line);
    expect(m, line).not.toBeNull();
    const port = Number(m?.[1]);
    const [low, high] = readSysctl("net/ipv4/ip_local_port_range").split(/\s+/).map(Number);
    expect(port).toBeGreaterThanOrEqual(low as number);
    expect(port).toBeLessThanOrEqual(high as number);
    expect(await runOk(["ps"])).toContain(`0.0.0.0:${port}->8080/tcp`);
    expect((await inspect(id)).NetworkSettings.Ports).toEqual({
      "8080/tcp": [{ HostIp: "0.0.0.0", HostPort: String(port) }],
    });
    expect((await inspect(id)).HostConfig.PublishAllPorts).toBe(true);
    expect(await waitForHttp("127.0.0.1", port)).toBe(GREETING);
    expect(lanGet(HOST_LAN_IP, port)).toBe(GREETING);
    await runOk(["rm", "-f", id]);
    await expectPortGone(id, port);
  });

  test("--expose adds to the image's ports: inspect's ExposedPorts, -P publishes it; a bad one is refused", async () => {
    const args = [
      "run",
      "-d",
      "--network",
      "bridge",
      "-P",
      "--expose",
      "9090",
      "--expose",
      "53/udp",
    ];
    const id = (await runOk([...args, IMAGE, "httpd", "-f", "-p", "9090", "-h", "/www"])).trim();
    const exposed = Object.keys((await inspect(id)).Config.ExposedPorts).sort();
    expect(exposed).toEqual(["53/udp", "8080/tcp", "9090/tcp"]);
    const m = /^0\.0\.0\.0:(\d+)$/.exec((await runOk(["port", id, "9090/tcp"])).trim());
    expect(m).not.toBeNull();
    const port = Number(m?.[1]);
    expect(await waitForHttp("127.0.0.1", port)).toBe(GREETING);
    await runOk(["rm", "-f", id]);
    await expectPortGone(id, port);
    const before = await runOk(["ps", "-aq"]);
    const bad = await box.run(["run", "--rm", "--expose", "http", IMAGE, "true"]);
    expect(bad.code).toBe(125);
    expect(oneLineError(bad)).toBe(
      "minibox: invalid range format for --expose: http; use --expose PORT[-PORT][/tcp|udp], e.g. --expose 8080 or --expose 53/udp",
    );
    expect(await runOk(["ps", "-aq"])).toBe(before);
  });

  test("a port another program holds: Docker's error, exit 125, nothing left", async () => {
    const holder: Server = createServer();
    await new Promise<void>((r) => holder.listen(BUSY_PORT, "127.0.0.1", r));
    try {
      const before = Object.keys(leases());
      const r = await box.run([
        "run",
        "-d",
        "--network",
        "bridge",
        "--name",
        `${P}-busy`,
        "-p",
        `127.0.0.1:${BUSY_PORT}:8080`,
        IMAGE,
        ...HTTPD,
      ]);
      expect(r.code).toBe(125);
      expect(oneLineError(r)).toBe(
        `minibox: Bind for 127.0.0.1:${BUSY_PORT} failed: port is already allocated`,
      );
      expect(await runOk(["ps", "-q", "--filter", `name=${P}-busy`])).toBe("");
      expect(Object.keys(leases())).toEqual(before);
      expect(dnatRulesFor(BUSY_PORT)).toEqual([]);
    } finally {
      await new Promise((r) => holder.close(r));
    }
    await box.run(["rm", "-f", `${P}-busy`]);
  });

  test("two containers asking for the same port: the second fails with Docker's error, the first keeps serving", async () => {
    const first = (
      await runOk([
        "run",
        "-d",
        "--network",
        "bridge",
        "-p",
        `127.0.0.1:${PORT}:8080`,
        IMAGE,
        ...HTTPD,
      ])
    ).trim();
    const before = Object.keys(leases());
    const r = await box.run([
      "run",
      "-d",
      "--network",
      "bridge",
      "-p",
      `${PORT}:8080`,
      IMAGE,
      ...HTTPD,
    ]);
    expect(r.code).toBe(125);
    expect(oneLineError(r)).toBe(
      `minibox: Bind for 0.0.0.0:${PORT} failed: port is already allocated`,
    );
    expect(Object.keys(leases())).toEqual(before);
    expect(dnatRulesFor(PORT)).toHaveLength(1);
    expect(await waitForHttp("127.0.0.1", PORT)).toBe(GREETING);
    await runOk(["rm", "-f", first]);
    await expectPortGone(first, PORT);
  });

  test("after SIGKILL of the monitor: the next command's sweep removes the rule, the port is free, the lease gone", async () => {
    const id = (
      await runOk([
        "run",
        "-d",
        "--network",
        "bridge",
        "-p",
        `127.0.0.1:${PORT}:8080`,
        IMAGE,
        ...HTTPD,
      ])
    ).trim();
    expect(dnatRulesFor(PORT)).toHaveLength(1);
    const state = JSON.parse(
      readFileSync(path.join(box.root, "containers", id, "state.json"), "utf8"),
    ) as { monitorPid: number };
    process.kill(state.monitorPid, "SIGKILL");
    for (let i = 0; i < 100 && existsSync(`/proc/${state.monitorPid}`); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await runOk(["ps"]);
    await expectPortGone(id, PORT);
  });

  test("--trace shows the port-holding step; host and none networks", async () => {
    const r = await box.run([
      "run",
      "--rm",
      "--trace",
      "--network",
      "bridge",
      "-p",
      `127.0.0.1:${PORT}:8080`,
      IMAGE,
      "true",
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      new RegExp(`[\\d.]+ ms\\s+hold tcp 127\\.0\\.0\\.1:${PORT} \\(published 8080/tcp\\)`),
    );
    expect(r.stderr).toMatch(/firewall: table inet minibox for .*1 published port/);
    const host = await box.run([
      "run",
      "--rm",
      "--network",
      "host",
      "-p",
      `${PORT}:8080`,
      IMAGE,
      "true",
    ]);
    expect(host.code).toBe(0);
    expect(host.stderr.trim()).toBe(
      "WARNING: Published ports are discarded when using host network mode",
    );
    const none = await box.run([
      "run",
      "--rm",
      "--network",
      "none",
      "-p",
      `${PORT}:8080`,
      IMAGE,
      "true",
    ]);
    expect(none.code).toBe(0);
    expect(none.stderr).toBe("");
    const bad = await box.run([
      "run",
      "--rm",
      "--network",
      "bridge",
      "-p",
      "99999:80",
      IMAGE,
      "true",
    ]);
    expect(bad.code).toBe(125);
    expect(oneLineError(bad)).toBe(
      "minibox: -p: invalid hostPort: 99999; use -p [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/udp], e.g. -p 127.0.0.1:8080:80",
    );
    const v6 = await box.run([
      "run",
      "--rm",
      "--network",
      "bridge",
      "-p",
      "[::1]:80:80",
      IMAGE,
      "true",
    ]);
    expect(v6.code).toBe(125);
    expect(oneLineError(v6)).toContain("publishing on ::1: only IPv4 host addresses are supported");
  });
});
