// `run --network bridge` on the real host: the default network's bridge
// minibox0, a veth per container, the firewall table `inet minibox` and
// net.ipv4.ip_forward — and everything gone again with the last container.
//
// Traffic goes only between the host, its containers and an "upstream"
// namespace this test creates, joined to the host by a veth on a /30 of
// 198.18.0.0/15 (the benchmarking range) with busybox httpd in it. Upstream
// has no route to the containers' subnet, so a reply can only come back
// when the container's traffic was masqueraded to the host's address.
//
// The bridge minibox0, the table and ip_forward are host-wide: the test
// refuses to start when another minibox already has them, saves ip_forward
// and puts it back, and deletes whatever is left even when a test failed.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { NETWORK_ROOT, networkPaths, rootLayout } from "../../src/layout.js";
import { currentFirewall, removeFirewall } from "../../src/runtime/network/firewall.js";
import { contains, parseCidr, parseIPv4 } from "../../src/runtime/network/subnet.js";
import { listNft, runNft } from "../../src/sys/nftables.js";
import { isTestStore, type Sandbox, sandbox } from "../support/minibox.js";
import { ip, ipJson, linkExists, readSysctl, testPrefix, writeSysctl } from "../support/netns.js";
import { testEnv } from "../support/testenv.js";
import { Upstream } from "../support/upstream.js";

const env = testEnv();
const IMAGE = `${env.registries.anon}/fixtures/base`;
const IP_FORWARD = "net/ipv4/ip_forward";
const BRIDGE = "minibox0";
const P = testPrefix();
const UPSTREAM = new Upstream(P);
const UPSTREAM_LINK = UPSTREAM.link;
const UP_IP = UPSTREAM.ip;
const GREETING = UPSTREAM.greeting;

let box: Sandbox;
let forwardBefore: string;

interface NetworkJson {
  name: string;
  id: string;
  subnet: string;
  gateway: string;
}

/** The default network's record (made by the first bridge run). */
function bridgeNetwork(): NetworkJson {
  const dir = rootLayout(NETWORK_ROOT).networks;
  for (const id of readdirSync(dir)) {
    const n = JSON.parse(readFileSync(path.join(dir, id, "network.json"), "utf8")) as NetworkJson;
    if (n.name === "bridge") return n;
  }
  throw new Error("no bridge network");
}

function leases(): Record<string, { ip: string; root: string }> {
  const file = networkPaths(rootLayout(NETWORK_ROOT).network(bridgeNetwork().id)).leases;
  const all = existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : {};
  return Object.fromEntries(
    Object.entries(all as Record<string, { ip: string; root: string }>).filter(([, l]) =>
      isTestStore(l.root),
    ),
  );
}

function inSubnet(address: string): boolean {
  return contains(parseCidr(bridgeNetwork().subnet), parseIPv4(address) as number);
}

/** Host links whose names are the host ends of these containers' veths. */
function vethsOf(ids: string[]): string[] {
  return ids.map((id) => `mbx${id.slice(0, 12)}`).filter(linkExists);
}

/** Nothing of minibox's networking left on the host for these containers. */
function expectAllGone(ids: string[]): void {
  expect(vethsOf(ids)).toEqual([]);
  expect(leases()).toEqual({});
  expect(currentFirewall()).toBeUndefined();
  expect(readSysctl(IP_FORWARD)).toBe(forwardBefore);
  expect(linkExists(BRIDGE)).toBe(false);
}

async function runOk(args: string[]): Promise<string> {
  const r = await box.run(args);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

async function inspect(id: string) {
  return JSON.parse(await runOk(["inspect", id]))[0];
}

beforeAll(async () => {
  if (linkExists(BRIDGE) || currentFirewall() !== undefined) {
    throw new Error(`${BRIDGE} or table inet minibox exists already: another minibox uses them`);
  }
  forwardBefore = readSysctl(IP_FORWARD);
  box = sandbox();
  await runOk(["pull", "-q", IMAGE]);
  await UPSTREAM.start();
});

afterAll(async () => {
  if (box) {
    const ids = (await box.run(["ps", "-aq"])).stdout.split("\n").filter(Boolean);
    if (ids.length > 0) await box.run(["rm", "-f", ...ids]);
    box.cleanup();
  }
  UPSTREAM.stop();
  // Checked absent in beforeAll, so whatever is here now is this test's.
  if (linkExists(BRIDGE)) spawnSync("ip", ["link", "del", BRIDGE]);
  if (currentFirewall() !== undefined) removeFirewall();
  if (forwardBefore !== undefined && readSysctl(IP_FORWARD) !== forwardBefore) {
    writeSysctl(IP_FORWARD, forwardBefore);
  }
});

describe("run --network bridge", () => {
  test("eth0 gets an address in the subnet and a default route via the gateway; /etc/hosts names it", async () => {
    const out = await runOk([
      "run",
      "--rm",
      "--network",
      "bridge",
      "--hostname",
      "boxy",
      IMAGE,
      "sh",
      "-c",
      "ip -4 addr show eth0; ip route; cat /etc/hosts; cat /etc/resolv.conf",
    ]);
    const network = bridgeNetwork();
    const [, address, prefix] = /inet (\S+)\/(\d+)/.exec(out) ?? [];
    expect(inSubnet(address as string)).toBe(true);
    expect(Number(prefix)).toBe(parseCidr(network.subnet).prefix);
    expect(out).toContain(`default via ${network.gateway} dev eth0`);
    expect(out).toMatch(new RegExp(`^${address?.replace(/\./g, "\\.")}\\s+boxy`, "m"));
    // The host's nameservers without loopback ones (unreachable from the container); no query is sent.
    expect(out).toMatch(/^nameserver \S+$/m);
    expect(out).not.toMatch(/^nameserver (127\.|::1)/m);
    expectAllGone([]);
  });

  test("--trace shows the host-side steps with their durations", async () => {
    const r = await box.run(["run", "--rm", "--trace", "--network", "bridge", IMAGE, "true"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/[\d.]+ ms\s+network bridge: lease \S+\/\d+/);
    expect(r.stderr).toMatch(/[\d.]+ ms\s+bridge minibox0 \S+ up/);
    expect(r.stderr).toMatch(/[\d.]+ ms\s+firewall: table inet minibox for /);
    expect(r.stderr).toMatch(/veth mbx[0-9a-f]{12} on bridge minibox0/);
    expect(r.stderr).toMatch(/default route via \S+ dev eth0/);
    expect(r.stderr).toMatch(/[\d.]+ ms\s+firewall: table inet minibox removed/);
    expectAllGone([]);
  });

  test("a subnet the host now routes elsewhere: the idle default network moves, with one notice", async () => {
    const other = sandbox();
    // The network's subnet (networks are the host's: whatever an earlier run chose),
    // routed through this test's own veth (deleted with it).
    const taken = bridgeNetwork().subnet;
    const quoted = taken.replace(/[./]/g, "\\$&");
    ip("route", "add", taken, "dev", UPSTREAM_LINK);
    try {
      const first = await other.run(["run", "--rm", "--network", "bridge", IMAGE, "true"]);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stderr).toMatch(
        new RegExp(`^minibox: the bridge network uses (?!${quoted})\\S+ \\(${quoted} .*\\)$`, "m"),
      );
      expect(bridgeNetwork().subnet).not.toBe(taken);
      const second = await other.run(["run", "--rm", "--network", "bridge", IMAGE, "true"]);
      expect(second.code, second.stderr).toBe(0);
      expect(second.stderr).not.toContain("bridge network uses");
    } finally {
      spawnSync("ip", ["route", "del", taken, "dev", UPSTREAM_LINK]);
      other.cleanup();
    }
    expect(linkExists(BRIDGE)).toBe(false);
  });

  test("outbound HTTP to the upstream host, through masquerade", async () => {
    // The host routes upstream's address through the test's veth, nowhere else.
    const route = ipJson<{ dev: string }>("route", "get", UP_IP);
    expect(route[0]?.dev).toBe(UPSTREAM_LINK);
    const out = await runOk([
      "run",
      "--rm",
      "--network",
      "bridge",
      IMAGE,
      "wget",
      "-q",
      "-O",
      "-",
      `http://${UP_IP}:8080/hello.txt`,
    ]);
    expect(out).toBe(GREETING);
    expectAllGone([]);
  });

  test("a build's RUN reaches the upstream host on the bridge by default; build --network none cuts it off", async () => {
    const ctx = mkdtempSync(path.join(tmpdir(), `minibox-${P}-ctx-`));
    try {
      writeFileSync(
        path.join(ctx, "Dockerfile"),
        `FROM ${IMAGE}\nRUN wget -q -O /fetched.txt http://${UP_IP}:8080/hello.txt\n`,
      );
      await runOk(["build", "-q", "-t", `${P}-fetched`, ctx]);
      expect(await runOk(["run", "--rm", `${P}-fetched`, "cat", "/fetched.txt"])).toBe(GREETING);
      const cut = await box.run(["build", "-q", "--no-cache", "--network", "none", ctx]);
      expect(cut.code).not.toBe(0);
      expect(cut.stderr).toMatch(/The command '.*wget .*' returned a non-zero code/);
    } finally {
      rmSync(ctx, { recursive: true, force: true });
    }
    expectAllGone([]);
  });

  test("stats: NET I/O counts the container's traffic on eth0 (not lo)", async () => {
    const id = (
      await runOk([
        "run",
        "-d",
        "--network",
        "bridge",
        IMAGE,
        "sh",
        "-c",
        `wget -q -O /dev/null http://${UP_IP}:8080/hello.txt; sleep 300`,
      ])
    ).trim();
    try {
      let netIO = "";
      for (let i = 0; i < 50 && !/^[1-9]/.test(netIO); i++) {
        const r = await runOk(["stats", "--no-stream", "--format", "json", id]);
        netIO = (JSON.parse(r.trim().split("\n")[0] ?? "{}") as { NetIO?: string }).NetIO ?? "";
        if (!/^[1-9]/.test(netIO)) await new Promise((r) => setTimeout(r, 100));
      }
      // Received: at least the greeting and the HTTP headers; sent: the request.
      expect(netIO).toMatch(/^\d+(\.\d+)?k?B \/ \d+(\.\d+)?k?B$/);
      const [rx, tx] = netIO
        .split(" / ")
        .map((v) => Number.parseFloat(v) * (v.endsWith("kB") ? 1000 : 1));
      expect(rx).toBeGreaterThan(GREETING.length);
      expect(tx).toBeGreaterThan(0);
    } finally {
      await runOk(["rm", "-f", id]);
    }
    expectAllGone([id]);
  });

  test("a forward chain of another table with policy drop (as Docker sets FORWARD) does not cut outbound off; minibox's accept rules go with the container", async () => {
    const table = `${P}fw`;
    runNft(`add table inet ${table}`);
    try {
      runNft(
        `add chain inet ${table} forward { type filter hook forward priority 0; policy drop; }`,
      );
      const r = await box.run([
        "run",
        "--rm",
        "--trace",
        IMAGE,
        "wget",
        "-q",
        "-O",
        "-",
        `http://${UP_IP}:8080/hello.txt`,
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(GREETING);
      expect(r.stderr).toMatch(
        new RegExp(`firewall: accept \\S+ in inet ${table} forward \\(policy drop\\)`),
      );
      // The host's chain is as the test made it: policy drop, no rule left.
      const rules = listNft(`list chain inet ${table} forward`).filter(
        (i) => "rule" in (i as object),
      );
      expect(rules).toEqual([]);
    } finally {
      runNft(`delete table inet ${table}`);
    }
    expectAllGone([]);
  });

  test("two containers reach each other by address; inspect shows NetworkSettings", async () => {
    const web = (
      await runOk([
        "run",
        "-d",
        "--network",
        "bridge",
        "--name",
        "web",
        IMAGE,
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/etc",
      ])
    ).trim();
    const settings = (await inspect(web)).NetworkSettings;
    const network = bridgeNetwork();
    expect(inSubnet(settings.IPAddress)).toBe(true);
    expect(settings).toMatchObject({
      Gateway: network.gateway,
      IPPrefixLen: parseCidr(network.subnet).prefix,
    });
    expect(settings.MacAddress).toMatch(/^02:42(:[0-9a-f]{2}){4}$/);
    expect(settings.Networks.bridge).toMatchObject({
      NetworkID: network.id,
      IPAddress: settings.IPAddress,
    });
    expect((await inspect(web)).HostConfig.NetworkMode).toBe("bridge");
    // The bridge port in hairpin mode (set by the executor's veth step).
    const port = ipJson<{ linkinfo?: { info_slave_data?: { hairpin?: boolean } } }>(
      "-d",
      "link",
      "show",
      "dev",
      `mbx${web.slice(0, 12)}`,
    );
    expect(port[0]?.linkinfo?.info_slave_data?.hairpin).toBe(true);
    const url = `http://${settings.IPAddress}:8080/hostname`;
    const out = await runOk([
      "run",
      "--rm",
      "--network",
      "bridge",
      IMAGE,
      "wget",
      "-q",
      "-O",
      "-",
      url,
    ]);
    expect(out.trim()).toBe(web.slice(0, 12));
    await runOk(["rm", "-f", web]);
    expectAllGone([web]);
  });

  test("20 containers started at once get 20 distinct addresses; rm -f takes everything", async () => {
    const started = await Promise.all(
      Array.from({ length: 20 }, () =>
        box.run(["run", "-d", "--network", "bridge", IMAGE, "sleep", "300"]),
      ),
    );
    for (const r of started) expect(r.code, r.stderr).toBe(0);
    const ids = started.map((r) => r.stdout.trim());
    const addresses = await Promise.all(
      ids.map(async (id) => (await inspect(id)).NetworkSettings.IPAddress),
    );
    // On failure, say which containers are not running and why (an empty address).
    const states = await Promise.all(ids.map(async (id) => (await inspect(id)).State));
    const why = states.map((s) => `${s.Status} ${s.ExitCode} ${s.Error}`);
    expect(new Set(addresses).size, JSON.stringify({ addresses, why })).toBe(20);
    for (const a of addresses) expect(inSubnet(a)).toBe(true);
    expect(Object.keys(leases()).sort()).toEqual([...ids].sort());
    expect(vethsOf(ids)).toHaveLength(20);
    const masters = ipJson<{ ifname: string; master?: string }>("link", "show", "master", BRIDGE);
    expect(masters.map((l) => l.ifname).sort()).toEqual(
      ids.map((id) => `mbx${id.slice(0, 12)}`).sort(),
    );
    expect(readSysctl(IP_FORWARD)).toBe("1");
    expect(currentFirewall()).toBeDefined();
    await runOk(["rm", "-f", ...ids]);
    expectAllGone(ids);
  });

  test("after SIGKILL of a -d container's monitor, the next ps reconciles everything", async () => {
    const id = (await runOk(["run", "-d", "--network", "bridge", IMAGE, "sleep", "300"])).trim();
    const state = JSON.parse(
      readFileSync(path.join(box.root, "containers", id, "state.json"), "utf8"),
    ) as { monitorPid: number };
    expect(vethsOf([id])).toHaveLength(1);
    process.kill(state.monitorPid, "SIGKILL");
    for (let i = 0; i < 100 && existsSync(`/proc/${state.monitorPid}`); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await runOk(["ps", "-a"]);
    expectAllGone([id]);
    await runOk(["rm", id]);
  });
});
