// minibox's nftables table through libnftables, on the real kernel — but only
// inside network namespaces this test creates: H plays the host (a bridge,
// the firewall, the sysctls), C a container on H's bridge, L a LAN host on a
// veth to H (198.18.0.0/24, the benchmarking range). Everything is applied
// from a process started in H (test/support/netns-tool.mjs, on the built
// dist/), so the real host's ruleset and sysctls are never touched; the test
// checks that too. Needs root, iproute2 and libnftables1.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { FirewallDesc } from "../../src/runtime/network/firewall.js";
import { runNft } from "../../src/sys/nftables.js";
import { ip } from "../support/netns.js";

const TOOL = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  "..",
  "support",
  "netns-tool.mjs",
);
const P = `mbt${randomBytes(3).toString("hex")}`;
const NS = { host: `${P}h`, container: `${P}c`, lan: `${P}l` };
const BRIDGE = `${P}br`;
const HOST_LAN_IP = "198.18.0.1";
const LAN_IP = "198.18.0.2";
const GATEWAY = "172.30.0.1";
const CONTAINER_IP = "172.30.0.2";

const servers: ChildProcess[] = [];
let scratch: string;
let hostRulesetBefore: string;
let hostForwardBefore: string;

/** Run one netns-tool operation inside namespace `ns`; its JSON result. */
function inNs(ns: string, op: string, arg: unknown = {}): Record<string, unknown> {
  const r = spawnSync(
    "ip",
    ["netns", "exec", ns, process.execPath, TOOL, op, JSON.stringify(arg)],
    {
      encoding: "utf8",
      timeout: 30_000,
    },
  );
  const last = r.stdout.trim().split("\n").pop() ?? "";
  if (!last) throw new Error(`netns-tool ${op} in ${ns}: ${r.stderr.trim()}`);
  return JSON.parse(last) as Record<string, unknown>;
}

/** Start an echo server (replies with the peer's address) in `ns`; resolves once it listens. */
function serve(ns: string, ports: { tcp?: number; udp?: number }): Promise<void> {
  const child = spawn(
    "ip",
    ["netns", "exec", ns, process.execPath, TOOL, "serve", JSON.stringify(ports)],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  servers.push(child);
  return new Promise((resolve, reject) => {
    child.stdout?.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`server in ${ns} exited (${code})`)));
  });
}

const sysctlIn = (ns: string, key: string) =>
  spawnSync("ip", ["netns", "exec", ns, "cat", `/proc/sys/${key}`], {
    encoding: "utf8",
  }).stdout.trim();

function createTopology(): void {
  for (const ns of Object.values(NS)) {
    ip("netns", "add", ns);
    ip("-n", ns, "link", "set", "lo", "up");
  }
  ip("-n", NS.host, "link", "add", BRIDGE, "type", "bridge");
  ip("-n", NS.host, "addr", "add", `${GATEWAY}/16`, "dev", BRIDGE);
  ip("-n", NS.host, "link", "set", BRIDGE, "up");
  // C's veth: H's end on the bridge, C's end eth0 with a default route via the gateway.
  ip(
    "-n",
    NS.host,
    "link",
    "add",
    `${P}c0`,
    "type",
    "veth",
    "peer",
    "name",
    "eth0",
    "netns",
    NS.container,
  );
  ip("-n", NS.host, "link", "set", `${P}c0`, "master", BRIDGE, "up");
  // With br_netfilter loaded (Docker loads it) the DNAT of a hairpin packet
  // happens on the bridge path, which then must send it back out of the port it
  // came in on: only a port in hairpin mode may (Docker sets it on each veth).
  ip("-n", NS.host, "link", "set", `${P}c0`, "type", "bridge_slave", "hairpin", "on");
  ip("-n", NS.container, "addr", "add", `${CONTAINER_IP}/16`, "dev", "eth0");
  ip("-n", NS.container, "link", "set", "eth0", "up");
  ip("-n", NS.container, "route", "add", "default", "via", GATEWAY);
  // L: a LAN host whose default route is H.
  ip(
    "-n",
    NS.host,
    "link",
    "add",
    `${P}l0`,
    "type",
    "veth",
    "peer",
    "name",
    "eth0",
    "netns",
    NS.lan,
  );
  ip("-n", NS.host, "addr", "add", `${HOST_LAN_IP}/24`, "dev", `${P}l0`);
  ip("-n", NS.host, "link", "set", `${P}l0`, "up");
  ip("-n", NS.lan, "addr", "add", `${LAN_IP}/24`, "dev", "eth0");
  ip("-n", NS.lan, "link", "set", "eth0", "up");
  ip("-n", NS.lan, "route", "add", "default", "via", HOST_LAN_IP);
}

const NETWORK = { name: "bridge", bridge: BRIDGE, subnet: "172.30.0.0/16" };
const DESC: FirewallDesc = {
  networks: [NETWORK],
  ports: [
    { proto: "tcp", hostPort: 9090, containerIp: CONTAINER_IP, containerPort: 8080 },
    {
      proto: "tcp",
      hostIp: "127.0.0.1",
      hostPort: 9091,
      containerIp: CONTAINER_IP,
      containerPort: 8080,
    },
    { proto: "udp", hostPort: 5353, containerIp: CONTAINER_IP, containerPort: 5353 },
  ],
  routeLocalnet: true,
};

beforeAll(async () => {
  hostRulesetBefore = runNft("list ruleset");
  hostForwardBefore = readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8");
  scratch = mkdtempSync(path.join(tmpdir(), "mbt-firewall-"));
  createTopology();
  await serve(NS.container, { tcp: 8080, udp: 5353 });
  await serve(NS.lan, { tcp: 7070 });
  await serve(NS.host, { tcp: 7171 });
});

afterAll(() => {
  for (const s of servers) if (s.pid) s.kill("SIGKILL");
  for (const ns of Object.values(NS)) spawnSync("ip", ["netns", "del", ns]);
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  // The real host: same ruleset (no inet minibox), same ip_forward.
  expect(runNft("list ruleset")).toBe(hostRulesetBefore);
  expect(readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8")).toBe(hostForwardBefore);
});

type Listed = { chain?: { name: string }; rule?: { chain: string; expr: unknown[] } };

describe("the table through libnftables (in H)", () => {
  test("applied, listed back in JSON, replaced by a re-apply, gone after remove", () => {
    expect(inNs(NS.host, "apply", DESC)).toEqual({ ok: true });
    const table = inNs(NS.host, "list").table as Listed[];
    const chains = table.flatMap((i) => (i.chain ? [i.chain.name] : []));
    expect(chains.sort()).toEqual([
      "forward",
      "guard",
      "output",
      "ports",
      "postrouting",
      "prerouting",
    ]);
    const rules = (t: Listed[], chain: string) => t.filter((i) => i.rule?.chain === chain);
    const dnats = rules(table, "ports").map((i) => JSON.stringify(i.rule?.expr));
    expect(dnats).toHaveLength(3);
    expect(dnats[0]).toContain('{"dnat":{"family":"ip","addr":"172.30.0.2","port":8080}}');
    expect(dnats[1]).toContain('"right":"127.0.0.1"');
    expect(rules(table, "postrouting")).toHaveLength(3);

    // Re-applying with one port replaces the table: no duplicate, no stale rule.
    inNs(NS.host, "apply", { ...DESC, ports: DESC.ports.slice(0, 1), routeLocalnet: false });
    const again = inNs(NS.host, "list").table as Listed[];
    expect(rules(again, "ports")).toHaveLength(1);
    expect(rules(again, "postrouting")).toHaveLength(2);
    expect(again.some((i) => i.chain?.name === "guard")).toBe(false);

    expect(inNs(NS.host, "remove")).toEqual({ ok: true });
    expect(inNs(NS.host, "list")).toEqual({ table: null });
    expect(inNs(NS.host, "remove")).toEqual({ ok: true });
  });

  test("a refused batch throws libnftables' message and leaves the old table", () => {
    inNs(NS.host, "apply", DESC);
    const bad = { ...DESC, networks: [{ ...NETWORK, subnet: "172.30.0.0/99" }] };
    expect(String(inNs(NS.host, "apply", bad).error)).toMatch(/invalid IPv4 subnet/);
    expect((inNs(NS.host, "list").table as Listed[]).length).toBeGreaterThan(0);
    inNs(NS.host, "remove");
  });
});

describe("packets (C behind H's bridge, L on H's LAN side)", () => {
  const state = () => path.join(scratch, "host-sysctls.json");

  beforeAll(() => {
    inNs(NS.host, "enable", { state: state(), routeLocalnet: [BRIDGE] });
    inNs(NS.host, "apply", DESC);
  });
  afterAll(() => {
    inNs(NS.host, "remove");
    inNs(NS.host, "restore", { state: state() });
  });

  test("the sysctls are set in H only", () => {
    expect(sysctlIn(NS.host, "net/ipv4/ip_forward")).toBe("1");
    expect(sysctlIn(NS.host, `net/ipv4/conf/${BRIDGE}/route_localnet`)).toBe("1");
  });

  test("a LAN host reaches the published port; the container sees the LAN address", () => {
    expect(inNs(NS.lan, "tcp", { host: HOST_LAN_IP, port: 9090 })).toEqual({ peer: LAN_IP });
  });

  test("a port published on 127.0.0.1 is reachable from H's loopback, not from the LAN", () => {
    expect(inNs(NS.host, "tcp", { host: "127.0.0.1", port: 9091 })).toEqual({ peer: GATEWAY });
    expect(inNs(NS.lan, "tcp", { host: HOST_LAN_IP, port: 9091 })).toHaveProperty("error");
  });

  test("hairpin: the container reaches its own published port through H's address", () => {
    expect(inNs(NS.container, "tcp", { host: HOST_LAN_IP, port: 9090 })).toEqual({ peer: GATEWAY });
  });

  test("outbound traffic from the container is masqueraded behind H's address", () => {
    expect(inNs(NS.container, "tcp", { host: LAN_IP, port: 7070 })).toEqual({ peer: HOST_LAN_IP });
  });

  test("udp publishing", () => {
    expect(inNs(NS.lan, "udp", { host: HOST_LAN_IP, port: 5353 })).toEqual({ peer: LAN_IP });
  });

  test("the container's address itself is not reachable from the LAN (only what is published)", () => {
    const r = inNs(NS.lan, "tcp", { host: CONTAINER_IP, port: 8080, timeoutMs: 1000 });
    expect(r).toEqual({ error: "timeout" });
  });
});

describe("limits and guards (in H)", () => {
  const state = () => path.join(scratch, "host-sysctls-2.json");

  beforeAll(() => {
    inNs(NS.host, "enable", { state: state(), routeLocalnet: [BRIDGE] });
    inNs(NS.host, "apply", DESC);
  });
  afterAll(() => {
    inNs(NS.host, "nft", { cmd: `delete table inet ${P}` }); // may be gone already: result ignored
    inNs(NS.host, "remove");
    inNs(NS.host, "restore", { state: state() });
  });

  test("route_localnet lets a container reach H's loopback through the gateway unless the guard drops it", () => {
    // C routes 127.0.0.1 to the gateway, as an attacker on the bridge would
    // (CVE-2020-8558): the local table's rule moves behind a rule of its own,
    // and C accepts the replies' 127.0.0.1 source on eth0.
    const localnet = `/proc/sys/net/ipv4/conf/eth0/route_localnet`;
    spawnSync("ip", ["netns", "exec", NS.container, "sh", "-c", `echo 1 > ${localnet}`]);
    expect(sysctlIn(NS.container, "net/ipv4/conf/eth0/route_localnet")).toBe("1");
    ip("-n", NS.container, "rule", "add", "pref", "100", "lookup", "local");
    ip("-n", NS.container, "rule", "del", "pref", "0");
    ip(
      "-n",
      NS.container,
      "route",
      "add",
      "127.0.0.1/32",
      "via",
      GATEWAY,
      "dev",
      "eth0",
      "table",
      "100",
    );
    ip("-n", NS.container, "rule", "add", "pref", "10", "to", "127.0.0.1/32", "lookup", "100");
    try {
      const toLoopback = { host: "127.0.0.1", port: 7171, timeoutMs: 1000 };
      expect(inNs(NS.container, "tcp", toLoopback)).toEqual({ error: "timeout" });
      // Without the guard (the sysctl still 1), H's loopback service answers the container.
      inNs(NS.host, "apply", { ...DESC, routeLocalnet: false });
      expect(inNs(NS.container, "tcp", toLoopback)).toEqual({ peer: CONTAINER_IP });
      inNs(NS.host, "apply", DESC);
      expect(inNs(NS.container, "tcp", toLoopback)).toEqual({ error: "timeout" });
    } finally {
      ip("-n", NS.container, "rule", "add", "pref", "0", "lookup", "local");
      ip("-n", NS.container, "rule", "del", "pref", "10");
      ip("-n", NS.container, "rule", "del", "pref", "100");
    }
  });

  test("a DROP policy in another table's forward chain still drops minibox's traffic, and is detected", () => {
    const outbound = { host: LAN_IP, port: 7070, timeoutMs: 1000 };
    expect(inNs(NS.host, "forward-drops")).toEqual({ drops: [] });
    const added = inNs(NS.host, "nft", {
      cmd: `add table inet ${P}\nadd chain inet ${P} fw { type filter hook forward priority 0; policy drop; }`,
    });
    expect(added).not.toHaveProperty("error");
    expect(inNs(NS.host, "forward-drops")).toEqual({ drops: [`inet ${P} fw`] });
    expect(inNs(NS.container, "tcp", outbound)).toEqual({ error: "timeout" });
    inNs(NS.host, "nft", { cmd: `delete table inet ${P}` });
    expect(inNs(NS.container, "tcp", outbound)).toEqual({ peer: HOST_LAN_IP });
  });
});
