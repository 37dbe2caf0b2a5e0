// DNS for containers: a network's resolver (native/minibox-dns through
// syncResolver) and the DNS flags of `run` (--dns, --dns-search,
// --dns-option, --add-host).
//
// Traffic only between namespaces this test creates and the host:
//   client    a netns joined to the host by a veth on a /30 of 198.18.0.0/15;
//             the host end's address plays the network's gateway, where
//             the resolver listens (queries come from the client, as a
//             container's would)
//   upstream  a netns on a /30 of 198.19.x with a tiny nameserver (node
//             dgram, test/support/dns-upstream.mjs); the resolver's
//             resolv.conf is a file of the test's naming only it: no
//             query ever leaves for a real nameserver
// Everything is removed in afterAll, even when a test failed.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { NETWORK_ROOT, networkPaths, rootLayout } from "../../src/layout.js";
import { type DnsMember, runningResolver, syncResolver } from "../../src/runtime/network/dns.js";
import { currentFirewall } from "../../src/runtime/network/firewall.js";
import { dnsQuery, dnsQueryTcp } from "../support/dns-query.js";
import { type Sandbox, sandbox } from "../support/minibox.js";
import { ip, ipJson, linkExists, testPrefix } from "../support/netns.js";
import { testEnv } from "../support/testenv.js";

const env = testEnv();
const IMAGE = `${env.registries.anon}/fixtures/base`;
const P = testPrefix();
const CLIENT_NS = `${P}cl`;
const CLIENT_LINK = `${P}c0`;
const UPSTREAM_NS = `${P}up`;
const UPSTREAM_LINK = `${P}u0`;
const OCTET = 1 + ((randomBytes(1)[0] ?? 0) % 250);
/** The resolver's address, as a network's gateway would be. */
const GATEWAY = `198.18.${OCTET}.1`;
const CLIENT_IP = `198.18.${OCTET}.2`;
const HOST_UP_IP = `198.19.${OCTET}.1`;
const UP_IP = `198.19.${OCTET}.2`;
const OUTSIDE = { "outside.example": `198.19.${OCTET}.77` };
const ID = "c0ffee".repeat(10).padEnd(64, "0");

let box: Sandbox;
let work: string;
let netDir: string;
let upstreamConf: string;
let upstream: ChildProcess | undefined;
const network = { name: `${P}net`, gateway: GATEWAY, subnet: `198.18.${OCTET}.0/30` };

const members = (...extra: DnsMember[]): DnsMember[] => [
  { name: "web", aliases: ["www"], ip: "10.89.0.2", id: ID },
  { name: "db", aliases: ["shared"], ip: "10.89.0.3" },
  { name: "db2", aliases: ["shared"], ip: "10.89.0.4" },
  ...extra,
];

const sync = (m: DnsMember[]) => syncResolver(netDir, network, m, { resolvConf: upstreamConf });

/** busybox nslookup NAME GATEWAY, run in the client namespace. */
function nslookup(name: string) {
  return spawnSync(
    "ip",
    ["netns", "exec", CLIENT_NS, "busybox", "nslookup", "-type=a", name, GATEWAY],
    { encoding: "utf8", timeout: 15_000 },
  );
}

function namespaceWithVeth(ns: string, link: string, hostIp: string, nsIp: string): void {
  ip("netns", "add", ns);
  ip("-n", ns, "link", "set", "lo", "up");
  ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns);
  ip("addr", "add", `${hostIp}/30`, "dev", link);
  ip("link", "set", link, "up");
  ip("-n", ns, "addr", "add", `${nsIp}/30`, "dev", "eth0");
  ip("-n", ns, "link", "set", "eth0", "up");
}

/** The upstream nameserver, in its own process group (killed with it in afterAll). */
async function startUpstream(): Promise<void> {
  const script = fileURLToPath(new URL("../support/dns-upstream.mjs", import.meta.url));
  upstream = spawn(
    "ip",
    ["netns", "exec", UPSTREAM_NS, process.execPath, script, UP_IP, JSON.stringify(OUTSIDE)],
    { stdio: ["ignore", "pipe", "inherit"], detached: true },
  );
  await new Promise<void>((resolve, reject) => {
    upstream?.stdout?.on("data", (d: Buffer) => d.toString().includes("ready") && resolve());
    upstream?.on("exit", (code) => reject(new Error(`upstream nameserver exited (${code})`)));
  });
}

beforeAll(async () => {
  box = sandbox();
  work = mkdtempSync(path.join(tmpdir(), `${P}-dns-`));
  netDir = path.join(work, "network");
  upstreamConf = path.join(work, "resolv.conf");
  writeFileSync(upstreamConf, `# the test's upstream only\nnameserver ${UP_IP}\n`);
  namespaceWithVeth(CLIENT_NS, CLIENT_LINK, GATEWAY, CLIENT_IP);
  namespaceWithVeth(UPSTREAM_NS, UPSTREAM_LINK, HOST_UP_IP, UP_IP);
  // The host reaches upstream through this test's veth, nowhere else.
  expect(ipJson<{ dev: string }>("route", "get", UP_IP)[0]?.dev).toBe(UPSTREAM_LINK);
  await startUpstream();
  await runOk(["pull", "-q", IMAGE]);
});

afterAll(async () => {
  const running = netDir ? await runningResolver(netDir).catch(() => undefined) : undefined;
  if (running) process.kill(running.pid, "SIGKILL");
  if (upstream?.pid) process.kill(-upstream.pid, "SIGKILL");
  for (const ns of [CLIENT_NS, UPSTREAM_NS]) spawnSync("ip", ["netns", "del", ns]);
  for (const link of [CLIENT_LINK, UPSTREAM_LINK])
    if (linkExists(link)) spawnSync("ip", ["link", "del", link]);
  if (box) {
    const ids = (await box.run(["ps", "-aq"])).stdout.split("\n").filter(Boolean);
    if (ids.length > 0) await box.run(["rm", "-f", ...ids]);
    box.cleanup();
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

async function runOk(args: string[]): Promise<string> {
  const r = await box.run(args);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

describe("a network's resolver (minibox-dns)", () => {
  test("answers containers' names, aliases and short IDs from its records (busybox nslookup)", async () => {
    await sync(members());
    const r = nslookup("web");
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Name:\s+web\s+Address:\s+10\.89\.0\.2/);
    expect((await dnsQuery(GATEWAY, "WWW")).addresses).toEqual(["10.89.0.2"]);
    expect((await dnsQuery(GATEWAY, ID.slice(0, 12))).addresses).toEqual(["10.89.0.2"]);
    // One alias on two containers: both addresses (Docker's round robin).
    expect((await dnsQuery(GATEWAY, "shared")).addresses.sort()).toEqual([
      "10.89.0.3",
      "10.89.0.4",
    ]);
    // AAAA of a known name: no data, not NXDOMAIN (the network is IPv4 only).
    expect(await dnsQuery(GATEWAY, "web", 28)).toEqual({ rcode: 0, addresses: [] });
  });

  test("forwards other names to the upstream nameserver and relays its answer", async () => {
    await sync(members());
    const r = nslookup("outside.example");
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`Address: ${OUTSIDE["outside.example"]}`);
    expect(await dnsQuery(GATEWAY, "nowhere.example")).toEqual({ rcode: 3, addresses: [] });
    expect(await dnsQuery(GATEWAY, "nosuchcontainer")).toEqual({ rcode: 3, addresses: [] });
  });

  test("answers over TCP too, and relays over TCP (a client's retry after a truncated answer)", async () => {
    await sync(members());
    expect(await dnsQueryTcp(GATEWAY, "www")).toEqual({ rcode: 0, addresses: ["10.89.0.2"] });
    expect(await dnsQueryTcp(GATEWAY, "outside.example")).toEqual({
      rcode: 0,
      addresses: [OUTSIDE["outside.example"]],
    });
    expect((await dnsQueryTcp(GATEWAY, "nowhere.example")).rcode).toBe(3);
  });

  test("drops queries from outside its subnet (a LAN host routing to the gateway address)", async () => {
    await sync(members());
    // Upstream plays the LAN host: a route to the gateway address through the host.
    ip("-n", UPSTREAM_NS, "route", "add", `${GATEWAY}/32`, "via", HOST_UP_IP);
    try {
      const r = spawnSync(
        "ip",
        ["netns", "exec", UPSTREAM_NS, "busybox", "nslookup", "-type=a", "web", GATEWAY],
        { encoding: "utf8", timeout: 3000 },
      );
      expect(r.stdout).not.toContain("10.89.0.2");
      // The same question from the client namespace, inside the subnet: answered.
      expect(nslookup("web").stdout).toMatch(/Address:\s+10\.89\.0\.2/);
    } finally {
      ip("-n", UPSTREAM_NS, "route", "del", `${GATEWAY}/32`, "via", HOST_UP_IP);
    }
  });

  test("picks up a changed records file without a restart", async () => {
    await sync(members());
    const before = await runningResolver(netDir);
    await sync(members({ name: "late", aliases: [], ip: "10.89.0.9" }).slice(1));
    expect((await dnsQuery(GATEWAY, "late")).addresses).toEqual(["10.89.0.9"]);
    expect((await dnsQuery(GATEWAY, "web")).rcode).toBe(3); // removed: forwarded, upstream says NXDOMAIN
    expect((await runningResolver(netDir))?.pid).toBe(before?.pid);
  });

  test("without an upstream nameserver: NXDOMAIN for an unknown single-label name", async () => {
    await sync(members());
    writeFileSync(upstreamConf, "# no nameserver\n");
    try {
      expect(await dnsQuery(GATEWAY, "ghost")).toEqual({ rcode: 3, addresses: [] });
      expect((await dnsQuery(GATEWAY, "ghost.example")).rcode).toBe(2);
      expect((await dnsQuery(GATEWAY, "web")).addresses).toEqual(["10.89.0.2"]);
    } finally {
      writeFileSync(upstreamConf, `nameserver ${UP_IP}\n`);
    }
  });

  test("a container's own --dns servers get its forwarded queries, not the host's", async () => {
    // The host's list is empty: only the client's own upstream line can answer.
    writeFileSync(upstreamConf, "# no nameserver\n");
    try {
      await sync(members({ name: "client", aliases: [], ip: CLIENT_IP, dns: [UP_IP] }));
      const r = nslookup("outside.example");
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain(`Address: ${OUTSIDE["outside.example"]}`);
      // Asked from another address (the host's own): the host's (empty) list applies.
      expect((await dnsQuery(GATEWAY, "outside.example")).rcode).toBe(2);
    } finally {
      writeFileSync(upstreamConf, `nameserver ${UP_IP}\n`);
    }
  });

  test("stops with the last member: no process, no files; a stale pid file is not trusted", async () => {
    await sync(members());
    const running = await runningResolver(netDir);
    expect(running?.listen).toBe(`${GATEWAY}:53`);
    await sync([]);
    expect(existsSync(`/proc/${running?.pid}`)).toBe(false);
    expect(existsSync(networkPaths(netDir).dnsPid)).toBe(false);
    expect(existsSync(networkPaths(netDir).dnsRecords)).toBe(false);
    await expect(dnsQuery(GATEWAY, "web", 1, 500)).rejects.toThrow(/no answer/);
    // A pid file naming another program (this test's own process): not a resolver, never killed.
    writeFileSync(networkPaths(netDir).dnsPid, `${process.pid}\n`);
    await sync(members());
    const fresh = await runningResolver(netDir);
    expect(fresh?.pid).not.toBe(process.pid);
    expect((await dnsQuery(GATEWAY, "db")).addresses).toEqual(["10.89.0.3"]);
    await sync([]);
    expect(await runningResolver(netDir)).toBeUndefined();
  });

  test("a second resolver on the same address fails with a clear error", async () => {
    const other = path.join(work, "other");
    await sync(members());
    try {
      await expect(
        syncResolver(other, network, members(), { resolvConf: upstreamConf }),
      ).rejects.toThrow(/listening on (udp|tcp) .*:53: Address already in use/);
      expect(await runningResolver(other)).toBeUndefined();
      expect(existsSync(networkPaths(other).dnsRecords)).toBe(false);
    } finally {
      await sync([]);
    }
  });
});

describe("run: --dns, --dns-search, --dns-option, --add-host", () => {
  test("resolv.conf has the given nameservers, search domains and options; inspect shows them", async () => {
    const name = `${P}-dnsflags`;
    const out = await runOk([
      "run",
      "--name",
      name,
      "--dns",
      "198.18.0.53",
      "--dns",
      "198.18.0.54",
      "--dns-search",
      "corp.example",
      "--dns-option",
      "ndots:2",
      "--dns-option",
      "timeout:1",
      "--add-host",
      "db:198.18.0.7",
      IMAGE,
      "cat",
      "/etc/resolv.conf",
    ]);
    expect(out).toBe(
      "nameserver 198.18.0.53\nnameserver 198.18.0.54\nsearch corp.example\noptions ndots:2 timeout:1\n",
    );
    const [info] = JSON.parse(await runOk(["inspect", name]));
    expect(info.HostConfig).toMatchObject({
      Dns: ["198.18.0.53", "198.18.0.54"],
      DnsSearch: ["corp.example"],
      DnsOptions: ["ndots:2", "timeout:1"],
      ExtraHosts: ["db:198.18.0.7"],
    });
    // Without the flags: Docker's empty lists, and no extra hosts.
    await runOk(["run", "--name", `${name}-plain`, IMAGE, "true"]);
    const [plain] = JSON.parse(await runOk(["inspect", `${name}-plain`]));
    expect(plain.HostConfig).toMatchObject({
      Dns: [],
      DnsSearch: [],
      DnsOptions: [],
      ExtraHosts: null,
    });
    await runOk(["rm", `${name}-plain`]);
    await runOk(["rm", name]);
  });

  test("--add-host lines in /etc/hosts; host-gateway off a bridge is a host address", async () => {
    const out = await runOk([
      "run",
      "--rm",
      "--hostname",
      "boxy",
      "--add-host",
      "db:198.18.0.7",
      "--add-host",
      "gw=host-gateway",
      IMAGE,
      "cat",
      "/etc/hosts",
    ]);
    expect(out).toMatch(/^127\.0\.0\.1\tlocalhost$/m);
    expect(out).toMatch(/^198\.18\.0\.7\tdb$/m);
    expect(out).toMatch(/^\d+\.\d+\.\d+\.\d+\tgw$/m);
  });

  test("a bad --add-host or --dns is one clear line, exit 125, no container left", async () => {
    for (const [flag, value, words] of [
      ["--add-host", "nocolon", 'bad format for add-host: "nocolon"'],
      ["--add-host", "db:300.1.2.3", 'invalid IP address in add-host: "300.1.2.3"'],
      ["--dns", "not-an-ip", "IP address is not correctly formatted: not-an-ip"],
    ] as const) {
      const r = await box.run(["run", "--rm", flag, value, IMAGE, "true"]);
      expect(r.code).toBe(125);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain(`invalid argument "${value}" for "${flag}" flag: ${words}`);
    }
    expect((await box.run(["ps", "-aq"])).stdout).toBe("");
  });
});

/** The directory of the network named `name` (networks are the host's, whatever --root). */
function networkDir(name: string): string {
  const dir = rootLayout(NETWORK_ROOT).networks;
  for (const id of readdirSync(dir)) {
    const record = JSON.parse(readFileSync(path.join(dir, id, "network.json"), "utf8"));
    if (record.name === name) return path.join(dir, id);
  }
  throw new Error(`no network ${name}`);
}

describe("on the bridge network", () => {
  test("host-gateway is the gateway; a container asks a resolver named by --dns; the last container's removal stops the network's resolver", async () => {
    if (linkExists("minibox0") || currentFirewall() !== undefined) {
      throw new Error(
        "minibox0 or table inet minibox exists already: another minibox uses them (re-run)",
      );
    }
    const id = (await runOk(["run", "-d", "--network", "bridge", IMAGE, "sleep", "300"])).trim();
    // A resolver in the bridge network's own directory (on this test's address).
    const bridgeDir = networkDir("bridge");
    try {
      // It answers the bridge's subnet, where the container asking is.
      const subnet = JSON.parse(readFileSync(path.join(bridgeDir, "network.json"), "utf8")).subnet;
      await syncResolver(bridgeDir, { ...network, subnet }, members(), {
        resolvConf: upstreamConf,
      });
      const pid = (await runningResolver(bridgeDir))?.pid;
      const out = await runOk([
        "run",
        "--rm",
        "--network",
        "bridge",
        "--dns",
        GATEWAY,
        "--add-host",
        "gw:host-gateway",
        "--hostname",
        "boxy",
        IMAGE,
        "sh",
        "-c",
        "ip -4 addr show eth0; ip route; cat /etc/hosts; nslookup web; nslookup outside.example",
      ]);
      const gateway = /default via (\S+)/.exec(out)?.[1];
      // Its own address with its hostname (and name).
      const own = /inet (\S+)\//.exec(out)?.[1];
      expect(out).toMatch(new RegExp(`^${own?.replace(/\./g, "\\.")}\\tboxy( |$)`, "m"));
      expect(out).toMatch(new RegExp(`^${gateway?.replace(/\./g, "\\.")}\\tgw$`, "m"));
      expect(out).toMatch(/Name:\s+web\s+Address:\s+10\.89\.0\.2/);
      expect(out).toContain(`Address: ${OUTSIDE["outside.example"]}`);
      await runOk(["rm", "-f", id]);
      expect(await runningResolver(bridgeDir)).toBeUndefined();
      expect(existsSync(`/proc/${pid}`)).toBe(false);
    } finally {
      await box.run(["rm", "-f", id]);
      await syncResolver(bridgeDir, network, []);
    }
    expect(linkExists("minibox0")).toBe(false);
  });
});
