// User-defined networks on the real host: `network create/ls/inspect/rm/
// prune/connect/disconnect`, `run --network NAME --network-alias --ip`.
// Each network is a bridge mbr-<id11> of its own, isolated from the others
// by the firewall table `inet minibox`; an --internal one has no way out.
//
// Traffic goes only between containers on minibox's own bridges and an
// "upstream" namespace this test creates, joined to the host by a veth on a
// /30 of 198.18.0.0/15 with busybox httpd in it (to show that an internal
// network cannot get out, while a normal one can).
//
// The table and ip_forward are host-wide: the test waits until no other
// minibox has the table, saves ip_forward and puts it back, and deletes
// whatever of its own is left even when a test failed.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { NETWORK_ROOT, rootLayout } from "../../src/layout.js";
import { currentFirewall, removeFirewall } from "../../src/runtime/network/firewall.js";
import { isTestStore, type Sandbox, sandbox } from "../support/minibox.js";
import { ipJson, linkExists, readSysctl, testPrefix, writeSysctl } from "../support/netns.js";
import { testEnv } from "../support/testenv.js";
import { Upstream } from "../support/upstream.js";

const env = testEnv();
const IMAGE = `${env.registries.anon}/fixtures/base`;
const IP_FORWARD = "net/ipv4/ip_forward";
const P = testPrefix();
const UPSTREAM = new Upstream(P);
const UPSTREAM_LINK = UPSTREAM.link;
const OCTET = UPSTREAM.octet;
const UP_IP = UPSTREAM.ip;
const GREETING = UPSTREAM.greeting;
/** A subnet for --subnet/--ip, in the benchmarking range (nothing else uses it on a test host). */
const FIXED_SUBNET = `198.18.${OCTET}.0/24`;

let box: Sandbox;
let forwardBefore: string;

async function runOk(args: string[]): Promise<string> {
  const r = await box.run(args);
  expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

async function inspect(kind: "network" | "container", ref: string) {
  return JSON.parse(await runOk([kind, "inspect", ref]))[0];
}

/** The host's bridges of user-defined networks (mbr-*). */
function userBridges(): string[] {
  return ipJson<{ ifname: string }>("link", "show", "type", "bridge")
    .map((l) => l.ifname)
    .filter((n) => n.startsWith("mbr-"));
}

function leaseFiles(): Record<string, { ip: string; root: string }> {
  const dir = rootLayout(NETWORK_ROOT).networks;
  const all: Record<string, { ip: string; root: string }> = {};
  for (const id of existsSync(dir) ? readdirSync(dir) : []) {
    const file = path.join(dir, id, "leases.json");
    if (existsSync(file)) Object.assign(all, JSON.parse(readFileSync(file, "utf8")));
  }
  return Object.fromEntries(Object.entries(all).filter(([, l]) => isTestStore(l.root)));
}

/** minibox-dns processes listening on this gateway (by their command line). */
function resolversOn(gateway: string): string[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .flatMap((pid) => {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        return argv[0]?.endsWith("minibox-dns") && argv[1] === `${gateway}:53` ? [pid] : [];
      } catch {
        return []; // exited meanwhile
      }
    });
}

/** Host ends of these containers' veths (any of eth0…eth2). */
function vethsOf(ids: string[]): string[] {
  return ids
    .flatMap((id) => ["x", "1", "2"].map((t) => `mb${t}${id.slice(0, 12)}`))
    .filter(linkExists);
}

/** Nothing of these networks and containers left on the host. */
function expectAllGone(ids: string[], bridges: string[]): void {
  expect(vethsOf(ids)).toEqual([]);
  expect(leaseFiles()).toEqual({});
  expect(bridges.filter(linkExists)).toEqual([]);
  expect(currentFirewall()).toBeUndefined();
  expect(readSysctl(IP_FORWARD)).toBe(forwardBefore);
}

/** The table holds these bridges' rules (isolation, forward) while their containers run. */
function expectTableHas(bridges: string[]): void {
  const text = JSON.stringify(currentFirewall() ?? []);
  const missing = bridges.filter((b) => !text.includes(`"${b}"`));
  expect(missing).toEqual([]);
}

/** busybox wget with a deadline (this busybox's own -T crashes), under --init so TERM is handled. */
function fetchArgs(network: string, url: string): string[] {
  return [
    "run",
    "--rm",
    "--init",
    "--network",
    network,
    IMAGE,
    "timeout",
    "3",
    "wget",
    "-q",
    "-O",
    "-",
    url,
  ];
}

async function fetchFrom(network: string, url: string) {
  return box.run(fetchArgs(network, url));
}

/** A detached busybox httpd serving /etc on port 8080 (GET /hostname names it). */
async function startWeb(args: string[]): Promise<string> {
  return (
    await runOk(["run", "-d", ...args, IMAGE, "httpd", "-f", "-p", "8080", "-h", "/etc"])
  ).trim();
}

async function waitFor(what: string, ok: () => boolean, tries = 50, ms = 100): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, ms));
  }
  throw new Error(`timed out waiting for ${what}`);
}

beforeAll(async () => {
  // The table is host-wide: wait for another minibox's test to finish with it.
  await waitFor("table inet minibox to be free", () => currentFirewall() === undefined, 180, 1000);
  forwardBefore = readSysctl(IP_FORWARD);
  box = sandbox();
  await runOk(["pull", "-q", IMAGE]);
  await UPSTREAM.start();
}, 240_000);

/** Every container and network of the sandbox removed (a failed test leaves no trace for the next). */
async function removeAll(): Promise<void> {
  const ids = (await box.run(["ps", "-aq"])).stdout.split("\n").filter(Boolean);
  if (ids.length > 0) await box.run(["rm", "-f", ...ids]);
  await box.run(["network", "prune", "-f"]);
}

afterEach(async () => {
  if (box) await removeAll();
});

afterAll(async () => {
  if (box) {
    await removeAll();
    box.cleanup();
  }
  UPSTREAM.stop();
  if (currentFirewall() !== undefined) removeFirewall();
  if (forwardBefore !== undefined && readSysctl(IP_FORWARD) !== forwardBefore) {
    writeSysctl(IP_FORWARD, forwardBefore);
  }
});

describe("network create, ls, inspect, rm, prune", () => {
  test("a round trip with Docker's shapes, and Docker's errors", async () => {
    const name = `${P}-a`;
    const id = (
      await runOk(["network", "create", "--subnet", FIXED_SUBNET, "--label", "team=blue", name])
    ).trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const ls = (await runOk(["network", "ls"])).split("\n");
    expect(ls[0]).toMatch(/^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$/);
    expect(ls).toContainEqual(
      expect.stringMatching(new RegExp(`^${id.slice(0, 12)}\\s+${name}\\s+bridge\\s+local$`)),
    );
    for (const [n, d] of [
      ["bridge", "bridge"],
      ["host", "host"],
      ["none", "null"],
    ]) {
      expect(ls).toContainEqual(
        expect.stringMatching(new RegExp(`^[0-9a-f]{12}\\s+${n}\\s+${d}\\s+local$`)),
      );
    }
    expect((await runOk(["network", "ls", "-q"])).split("\n")).toContain(id.slice(0, 12));
    expect(await runOk(["network", "ls", "-q", "--filter", `name=${name}`])).toBe(
      `${id.slice(0, 12)}\n`,
    );
    const n = await inspect("network", name);
    expect(n).toMatchObject({
      Name: name,
      Id: id,
      Driver: "bridge",
      Scope: "local",
      Internal: false,
      IPAM: { Config: [{ Subnet: FIXED_SUBNET, Gateway: FIXED_SUBNET.replace(/0\/24$/, "1") }] },
      Containers: {},
      Labels: { team: "blue" },
    });
    const errors: [string[], RegExp][] = [
      [["network", "create", name], new RegExp(`network with name ${name} already exists`)],
      [["network", "create", "--subnet", FIXED_SUBNET, `${name}x`], /Pool overlaps/],
      [["network", "create", "-d", "overlay", `${name}y`], /plugin "overlay" not found/],
      [["network", "create", "--gateway", "10.0.0.1", `${name}z`], /corresponding subnet/],
      [["network", "rm", "bridge"], /bridge is a pre-defined network and cannot be removed/],
      [["network", "rm", `${P}-nope`], new RegExp(`network ${P}-nope not found`)],
      [["network", "inspect", `${P}-nope`], new RegExp(`network ${P}-nope not found`)],
    ];
    for (const [args, message] of errors) {
      const r = await box.run(args);
      expect(r.code, args.join(" ")).not.toBe(0);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
    expect((await runOk(["network", "rm", name])).trim()).toBe(name);
    const other = `${P}-b`;
    await runOk(["network", "create", other]);
    expect(await runOk(["network", "prune", "-f"])).toBe(`Deleted Networks:\n${other}\n\n`);
    expect(await runOk(["network", "ls", "-q"])).not.toContain(id.slice(0, 12));
    expect(userBridges().filter((b) => b === `mbr-${id.slice(0, 11)}`)).toEqual([]);
  });
});

describe("containers on user-defined networks", () => {
  test("two containers on one network reach each other; inspect shows both; rm refused while in use", async () => {
    const net = `${P}-one`;
    const netId = (await runOk(["network", "create", net])).trim();
    const bridge = `mbr-${netId.slice(0, 11)}`;
    const web = await startWeb(["--network", net, "--name", `${P}web`, "--network-alias", "www"]);
    const c = await inspect("container", web);
    expect(c.HostConfig.NetworkMode).toBe(net);
    const ep = c.NetworkSettings.Networks[net];
    expect(ep).toMatchObject({ NetworkID: netId, Aliases: ["www"] });
    expect(ep.DNSNames).toEqual([`${P}web`, "www", web.slice(0, 12)]);
    expect(ep.EndpointID).toMatch(/^[0-9a-f]{64}$/);
    expect(c.NetworkSettings.IPAddress).toBe("");
    expect(linkExists(bridge)).toBe(true);
    const out = await fetchFrom(net, `http://${ep.IPAddress}:8080/hostname`);
    expect(out.stdout.trim(), out.stderr).toBe(web.slice(0, 12));
    const n = await inspect("network", net);
    expect(n.Containers).toEqual({
      [web]: {
        Name: `${P}web`,
        EndpointID: ep.EndpointID,
        MacAddress: ep.MacAddress,
        IPv4Address: `${ep.IPAddress}/${ep.IPPrefixLen}`,
        IPv6Address: "",
      },
    });
    const rm = await box.run(["network", "rm", net]);
    expect(rm.code).toBe(1);
    expect(rm.stderr).toContain(
      `error while removing network: network ${net} id ${netId} has active endpoints`,
    );
    await runOk(["rm", "-f", web]);
    await runOk(["network", "rm", net]);
    expectAllGone([web], [bridge]);
  });

  test("containers on a user-defined network resolve each other by name and alias (nslookup, wget); the resolver goes with the last container", async () => {
    const net = `${P}-dns`;
    const netId = (await runOk(["network", "create", net])).trim();
    const bridge = `mbr-${netId.slice(0, 11)}`;
    const web = await startWeb(["--network", net, "--name", `${P}web`, "--network-alias", "www"]);
    const ip = (await inspect("container", web)).NetworkSettings.Networks[net].IPAddress;
    const gateway = (await inspect("network", net)).IPAM.Config[0].Gateway;
    expect(resolversOn(gateway)).toHaveLength(1);
    const script = `cat /etc/resolv.conf; nslookup ${P}web; nslookup www; wget -q -O - http://www:8080/hostname`;
    const out = await runOk(["run", "--rm", "--network", net, IMAGE, "sh", "-c", script]);
    expect(out).toMatch(new RegExp(`^nameserver ${gateway.replace(/\./g, "\\.")}$`, "m"));
    expect(out.match(new RegExp(`^Address: ${ip.replace(/\./g, "\\.")}$`, "gm"))).toHaveLength(2);
    expect(out.trim().split("\n").at(-1)).toBe(web.slice(0, 12));
    await runOk(["rm", "-f", web]);
    expect(resolversOn(gateway)).toEqual([]);
    await runOk(["network", "rm", net]);
    expectAllGone([web], [bridge]);
  });

  test("--ip picks the address; aliases and --ip are refused on the default bridge", async () => {
    const net = `${P}-fix`;
    const netId = (await runOk(["network", "create", "--subnet", FIXED_SUBNET, net])).trim();
    const addr = FIXED_SUBNET.replace(/0\/24$/, "77");
    const out = await runOk([
      "run",
      "--rm",
      "--network",
      net,
      "--ip",
      addr,
      IMAGE,
      "ip",
      "-4",
      "addr",
      "show",
      "eth0",
    ]);
    expect(out).toContain(`inet ${addr}/24`);
    for (const [flag, message] of [
      [
        ["--network-alias", "x"],
        "network-scoped alias is supported only for containers in user defined networks",
      ],
      [
        ["--ip", "172.30.0.9"],
        "user specified IP address is supported on user defined networks only",
      ],
    ] as const) {
      const r = await box.run(["run", "--rm", "--network", "bridge", ...flag, IMAGE, "true"]);
      expect(r.code).toBe(125);
      expect(r.stderr).toContain(message);
    }
    const missing = await box.run(["run", "--rm", "--network", `${P}-nope`, IMAGE, "true"]);
    expect(missing.code).toBe(125);
    expect(missing.stderr).toContain(`network ${P}-nope not found`);
    expect(await runOk(["ps", "-aq"])).toBe("");
    await runOk(["network", "rm", net]);
    expectAllGone([], [`mbr-${netId.slice(0, 11)}`]);
  });

  test("containers on two different networks cannot reach each other", async () => {
    const [a, b] = [`${P}-iso-a`, `${P}-iso-b`];
    const ids = [
      (await runOk(["network", "create", a])).trim(),
      (await runOk(["network", "create", b])).trim(),
    ];
    const web = await startWeb(["--network", a]);
    const addr = (await inspect("container", web)).NetworkSettings.Networks[a].IPAddress;
    const same = await fetchFrom(a, `http://${addr}:8080/hostname`);
    expect(same.stdout.trim(), same.stderr).toBe(web.slice(0, 12));
    const client = (
      await runOk(["run", "-d", "--init", "--network", b, IMAGE, "sleep", "300"])
    ).trim();
    expectTableHas(ids.map((id) => `mbr-${id.slice(0, 11)}`));
    const url = `http://${addr}:8080/hostname`;
    const across = await box.run(["exec", client, "timeout", "3", "wget", "-q", "-O", "-", url]);
    expect(across.code).not.toBe(0);
    expect(across.stdout).toBe("");
    await runOk(["rm", "-f", web, client]);
    await runOk(["network", "rm", a, b]);
    expectAllGone(
      [web, client],
      ids.map((id) => `mbr-${id.slice(0, 11)}`),
    );
  });

  test("--internal: no way out to the upstream host (a normal network has one), no default route", async () => {
    const route = ipJson<{ dev: string }>("route", "get", UP_IP);
    expect(route[0]?.dev).toBe(UPSTREAM_LINK);
    const [inner, outer] = [`${P}-int`, `${P}-ext`];
    const ids = [
      (await runOk(["network", "create", "--internal", inner])).trim(),
      (await runOk(["network", "create", outer])).trim(),
    ];
    expect((await inspect("network", inner)).Internal).toBe(true);
    const url = `http://${UP_IP}:8080/hello.txt`;
    const out = await fetchFrom(outer, url);
    expect(out.stdout, out.stderr).toBe(GREETING);
    const blocked = await fetchFrom(inner, url);
    expect(blocked.code).not.toBe(0);
    expect(blocked.stdout).toBe("");
    const routes = await runOk(["run", "--rm", "--network", inner, IMAGE, "ip", "route"]);
    expect(routes).not.toContain("default");
    await runOk(["network", "rm", inner, outer]);
    expectAllGone(
      [],
      ids.map((id) => `mbr-${id.slice(0, 11)}`),
    );
  });

  test("connect and disconnect a running container: eth1 comes and goes, reachability follows", async () => {
    const [a, b] = [`${P}-ca`, `${P}-cb`];
    const ids = [
      (await runOk(["network", "create", a])).trim(),
      (await runOk(["network", "create", b])).trim(),
    ];
    const web = await startWeb(["--network", a, "--name", `${P}cweb`]);
    const client = (
      await runOk(["run", "-d", "--init", "--network", b, IMAGE, "sleep", "300"])
    ).trim();
    const webIp = (await inspect("container", web)).NetworkSettings.Networks[a].IPAddress;
    const wget = [
      "exec",
      client,
      "timeout",
      "3",
      "wget",
      "-q",
      "-O",
      "-",
      `http://${webIp}:8080/hostname`,
    ];
    expectTableHas(ids.map((id) => `mbr-${id.slice(0, 11)}`));
    expect((await box.run(wget)).code).not.toBe(0);
    await runOk(["network", "connect", "--alias", "c2", a, client]);
    const links = await runOk(["exec", client, "ip", "-4", "addr"]);
    expect(links).toMatch(/eth1/);
    const settings = (await inspect("container", client)).NetworkSettings.Networks;
    expect(Object.keys(settings)).toEqual([b, a]);
    expect(settings[a]).toMatchObject({ Aliases: ["c2"] });
    expect(links).toContain(`inet ${settings[a].IPAddress}/`);
    const reached = await box.run(wget);
    expect(reached.stdout.trim(), reached.stderr).toBe(web.slice(0, 12));
    expect(Object.keys((await inspect("network", a)).Containers).sort()).toEqual(
      [client, web].sort(),
    );
    const again = await box.run(["network", "connect", a, client]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`already exists in network ${a}`);
    await runOk(["network", "disconnect", a, client]);
    expect(await runOk(["exec", client, "ip", "-4", "addr"])).not.toMatch(/eth1/);
    expect((await box.run(wget)).code).not.toBe(0);
    expect(linkExists(`mb1${client.slice(0, 12)}`)).toBe(false);
    const notOn = await box.run(["network", "disconnect", a, client]);
    expect(notOn.stderr).toContain(`container ${client} is not connected to network ${a}`);
    await runOk(["rm", "-f", web, client]);
    await runOk(["network", "rm", a, b]);
    expectAllGone(
      [web, client],
      ids.map((id) => `mbr-${id.slice(0, 11)}`),
    );
  });

  test("connect on a stopped container takes effect at its next start (eth0, eth1)", async () => {
    const [a, b] = [`${P}-sa`, `${P}-sb`];
    const ids = [
      (await runOk(["network", "create", a])).trim(),
      (await runOk(["network", "create", b])).trim(),
    ];
    const c = (await runOk(["run", "-d", "--init", "--network", a, IMAGE, "sleep", "300"])).trim();
    await runOk(["stop", "-t", "1", c]);
    expect(leaseFiles()).toEqual({});
    await runOk(["network", "connect", b, c]);
    const stopped = (await inspect("container", c)).NetworkSettings.Networks;
    expect(Object.keys(stopped)).toEqual([a, b]);
    expect(stopped[b]).toMatchObject({ NetworkID: ids[1], IPAddress: "" });
    await runOk(["start", c]);
    const addr = await runOk(["exec", c, "ip", "-4", "addr"]);
    expect(addr).toMatch(/eth0/);
    expect(addr).toMatch(/eth1/);
    await runOk(["rm", "-f", c]);
    await runOk(["network", "rm", a, b]);
    expectAllGone(
      [c],
      ids.map((id) => `mbr-${id.slice(0, 11)}`),
    );
  });

  test("on two networks at once; after SIGKILL of its monitor the next ps takes every endpoint", async () => {
    const [a, b] = [`${P}-ka`, `${P}-kb`];
    const ids = [
      (await runOk(["network", "create", a])).trim(),
      (await runOk(["network", "create", b])).trim(),
    ];
    const c = (
      await runOk(["run", "-d", "--network", a, "--network", b, IMAGE, "sleep", "300"])
    ).trim();
    const addr = await runOk(["exec", c, "ip", "-4", "addr"]);
    expect(addr).toMatch(/eth0/);
    expect(addr).toMatch(/eth1/);
    expect(vethsOf([c])).toHaveLength(2);
    expect(Object.keys(leaseFiles())).toEqual([c]);
    const state = JSON.parse(
      readFileSync(path.join(box.root, "containers", c, "state.json"), "utf8"),
    ) as { monitorPid: number };
    process.kill(state.monitorPid, "SIGKILL");
    await waitFor("the monitor to die", () => !existsSync(`/proc/${state.monitorPid}`));
    await runOk(["ps", "-a"]);
    expectAllGone(
      [c],
      ids.map((id) => `mbr-${id.slice(0, 11)}`),
    );
    await runOk(["rm", c]);
    await runOk(["network", "rm", a, b]);
  });

  test("connect during a foreground run: eth1 seen inside, and released with the rest at exit", async () => {
    const net = `${P}-fg`;
    const netId = (await runOk(["network", "create", net])).trim();
    const name = `${P}fg`;
    const script =
      "for i in $(seq 15); do ip link show eth1 >/dev/null 2>&1 && break; sleep 1; done; ip -4 addr show eth1";
    const fg = box.spawn([
      "run",
      "--rm",
      "--name",
      name,
      "--network",
      "bridge",
      IMAGE,
      "sh",
      "-c",
      script,
    ]);
    for (let i = 0; i < 100; i++) {
      const r = await box.run(["inspect", "-f", "{{.State.Running}}", name]);
      if (r.stdout.trim() === "true") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await runOk(["network", "connect", net, name]);
    const r = await fg.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/inet \S+ .*eth1/);
    await runOk(["network", "rm", net]);
    expectAllGone([], [`mbr-${netId.slice(0, 11)}`]);
  });
});
