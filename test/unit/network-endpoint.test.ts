import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  attachDefaultNetwork,
  detachNetwork,
  hostsWithAddress,
  publishPorts,
  reconcileEndpoints,
} from "../../src/runtime/network/endpoint.js";
import { dnsMembers, firewallFor } from "../../src/runtime/network/host-sync.js";
import { readLeases } from "../../src/runtime/network/ipam.js";
import type { NetlinkHelper } from "../../src/runtime/network/netlink.js";
import { findNetwork, type NetworkRecord } from "../../src/runtime/network/networks.js";
import { utsAndNetworkSteps } from "../../src/runtime/plan/namespace-steps.js";
import { parentSteps } from "../../src/runtime/plan/parent-steps.js";
import { context, IDMAP, lines } from "./plan-fixtures.js";

const A = "a".repeat(64);
const B = "b".repeat(64);

/** The host as the fakes leave it: links, the firewall's batches, a /proc/sys of its own. */
function fakeHost(dir: string) {
  const links = new Set<string>();
  const batches: string[] = [];
  const procSys = join(dir, "proc-sys");
  mkdirSync(join(procSys, "net/ipv4"), { recursive: true });
  writeFileSync(join(procSys, "net/ipv4/ip_forward"), "0\n");
  const helper: NetlinkHelper = {
    ensureBridge: (name) => void links.add(name),
    deleteLink: (name) => void links.delete(name),
    linkExists: (name) => links.has(name),
    attach: (o) => void links.add(o.hostIf),
  };
  const nft = (cmd: string) => {
    batches.push(cmd);
    return "";
  };
  const forward = () => readFileSync(join(procSys, "net/ipv4/ip_forward"), "utf8").trim();
  const chains: unknown[] = [];
  return {
    links,
    batches,
    forward,
    chains,
    ops: { dir, helper, nft, procSys, listRuleset: () => chains, resolver: async () => {} },
  };
}

describe("attach, detach, reconcile (fake host)", () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "mbx-endpoint-"));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("keeps bridge, forwarding and table while any container is on it; the last one takes them", async () => {
    const host = fakeHost(root);
    const trace: string[] = [];
    const t = (line: string) => void trace.push(line);
    const a = await attachDefaultNetwork(root, A, t, () => {}, host.ops);
    const b = await attachDefaultNetwork(root, B, t, () => {}, host.ops);
    expect(a.hostIf).toBe(`mbx${A.slice(0, 12)}`);
    expect(a.bridge).toBe("minibox0");
    expect(b.ip).not.toBe(a.ip);
    expect(host.links.has("minibox0")).toBe(true);
    expect(host.forward()).toBe("1");
    expect(host.batches.at(-1)).toContain("masquerade");
    expect(trace.some((l) => l.startsWith("network bridge: lease"))).toBe(true);
    await detachNetwork(A, a, t, host.ops);
    expect(host.links.has("minibox0")).toBe(true);
    expect(host.forward()).toBe("1");
    await detachNetwork(B, b, t, host.ops);
    expect(host.links.has("minibox0")).toBe(false);
    expect(host.forward()).toBe("0");
    expect(host.batches.at(-1)).toContain('"delete"');
    expect(host.batches.at(-1)).not.toContain("masquerade");
  });

  it("published ports: two containers' DNAT rules side by side; route_localnet and the guard only while a loopback port is published", async () => {
    const host = fakeHost(root);
    const localnet = join(host.ops.procSys, "net/ipv4/conf/minibox0/route_localnet");
    mkdirSync(dirname(localnet), { recursive: true });
    writeFileSync(localnet, "0\n");
    const last = () => host.batches.at(-1) ?? "";
    const a = await attachDefaultNetwork(
      root,
      A,
      () => {},
      () => {},
      host.ops,
    );
    const b = await attachDefaultNetwork(
      root,
      B,
      () => {},
      () => {},
      host.ops,
    );
    const loopback = [
      { containerPort: 8080, proto: "tcp", hostIp: "127.0.0.1", hostPort: "29090" },
    ] as const;
    const lan = [
      { containerPort: 80, proto: "udp", hostIp: "198.18.0.1", hostPort: "29091" },
    ] as const;
    expect(await publishPorts(A, a, [...loopback], () => {}, host.ops)).toEqual([
      { containerPort: 8080, proto: "tcp", hostIp: "127.0.0.1", hostPort: 29090 },
    ]);
    await publishPorts(B, b, [...lan], () => {}, host.ops);
    expect(last()).toContain(`"addr":"${a.ip}","port":8080`);
    expect(last()).toContain(`"addr":"${b.ip}","port":80`);
    expect(last()).toContain('"guard"');
    expect(readFileSync(localnet, "utf8").trim()).toBe("1");
    // The same port for another container is refused, and leaves the first's rules.
    await expect(publishPorts(B, b, [...loopback], () => {}, host.ops)).rejects.toThrow(
      "Bind for 127.0.0.1:29090 failed: port is already allocated",
    );
    await detachNetwork(A, a, () => {}, host.ops);
    expect(last()).not.toContain("8080");
    expect(last()).toContain(`"addr":"${b.ip}","port":80`);
    expect(last()).not.toContain('"guard"');
    expect(readFileSync(localnet, "utf8").trim()).toBe("0");
    await detachNetwork(B, b, () => {}, host.ops);
  });

  it("another table's drop-policy forward chain gets minibox's accept rules, removed with the last container", async () => {
    const host = fakeHost(root);
    host.chains.push({
      chain: { family: "ip", table: "filter", name: "FORWARD", hook: "forward", policy: "drop" },
    });
    const trace: string[] = [];
    const a = await attachDefaultNetwork(
      root,
      A,
      (l) => void trace.push(l),
      () => {},
      host.ops,
    );
    const subnet = (await findNetwork(root, "bridge"))?.subnet;
    const inserts = JSON.parse(host.batches.at(-1) as string).nftables;
    expect(inserts).toHaveLength(3);
    expect(inserts[0].insert.rule).toMatchObject({
      family: "ip",
      table: "filter",
      chain: "FORWARD",
      comment: "minibox",
    });
    expect(trace).toContain(`firewall: accept ${subnet} in ip filter FORWARD (policy drop)`);
    // As the kernel would list them now: the last detach deletes them by handle.
    host.chains.push(
      ...inserts.map((c: { insert: { rule: object } }, i: number) => ({
        rule: { ...c.insert.rule, handle: 10 + i },
      })),
    );
    await detachNetwork(A, a, () => {}, host.ops);
    const deletes = JSON.parse(host.batches.at(-1) as string).nftables;
    expect(
      deletes.map((c: { delete: { rule: { handle: number } } }) => c.delete.rule.handle),
    ).toEqual([10, 11, 12]);
  });

  it("reconcile drops only the dead containers' leases, deletes their veths, syncs", async () => {
    const host = fakeHost(root);
    const a = await attachDefaultNetwork(
      root,
      A,
      () => {},
      () => {},
      host.ops,
    );
    await attachDefaultNetwork(
      root,
      B,
      () => {},
      () => {},
      host.ops,
    );
    host.links.add(`mbx${B.slice(0, 12)}`);
    const dropped = await reconcileEndpoints(root, async () => new Set([A]), host.ops);
    expect(dropped).toEqual([B]);
    const network = await findNetwork(root, "bridge");
    expect(Object.keys(await readLeases(root, network as NetworkRecord))).toEqual([A]);
    expect(host.links.has(`mbx${B.slice(0, 12)}`)).toBe(false);
    expect(host.forward()).toBe("1");
    expect(await reconcileEndpoints(root, async () => new Set(), host.ops)).toEqual([A]);
    expect(host.forward()).toBe("0");
    expect(host.links.has(a.bridge)).toBe(false);
  });
});

describe("pure parts", () => {
  it("firewallFor: the networks in use and their ports; route_localnet only for ports the host's loopback reaches", () => {
    const n = { name: "bridge", bridge: "minibox0", subnet: "172.30.0.0/16" };
    const record: NetworkRecord = {
      ...n,
      id: "x",
      driver: "bridge",
      gateway: "172.30.0.1",
      internal: false,
      labels: {},
      created: "",
    };
    expect(firewallFor([record])).toEqual({
      networks: [{ ...n, internal: false }],
      ports: [],
      routeLocalnet: false,
    });
    const lan = {
      proto: "tcp",
      hostIp: "198.18.0.1",
      hostPort: 80,
      containerIp: "172.30.0.2",
      containerPort: 8080,
    } as const;
    expect(firewallFor([record], [lan]).routeLocalnet).toBe(false);
    expect(firewallFor([record], [lan, { ...lan, hostIp: "127.0.0.1" }]).routeLocalnet).toBe(true);
    expect(firewallFor([record], [{ ...lan, hostIp: undefined }]).routeLocalnet).toBe(true);
  });

  it("hostsWithAddress: adds the container's line, replaces a previous run's", () => {
    const base = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
    const once = hostsWithAddress(base, "172.30.0.2", "abc", "web");
    expect(once).toBe(`${base}172.30.0.2\tabc web\n`);
    expect(hostsWithAddress(once, "172.30.0.3", "abc", "web")).toBe(`${base}172.30.0.3\tabc web\n`);
    expect(hostsWithAddress(base, "172.30.0.2", "abc", "abc")).toBe(`${base}172.30.0.2\tabc\n`);
  });
});

describe("the plan with bridge endpoints", () => {
  const network = {
    network: "bridge",
    networkId: "n".repeat(64),
    bridge: "minibox0",
    ip: "172.30.0.2",
    prefix: 16,
    gateway: "172.30.0.1",
    mac: "02:42:ac:1e:00:02",
    hostIf: "mbxaaaaaaaaaaaa",
  };

  it("[parent]: the veth after the id maps and the cgroup, before the PID report", () => {
    expect(lines(parentSteps(context({ idmap: IDMAP }, { networks: [network] }))).slice(2)).toEqual(
      ["write /cg/cgroup.procs {pid}", "veth mbxaaaaaaaaaaaa eth0 {pid} minibox0 0", "report-pid"],
    );
  });

  it("[child]: eth0 and the default route after lo; none without a netns of its own", () => {
    expect(lines(utsAndNetworkSteps(context({}, { networks: [network] })))).toEqual([
      "sethostname box",
      "ifup lo",
      "netif eth0 02:42:ac:1e:00:02 172.30.0.2/16",
      "route-default 172.30.0.1 eth0",
    ]);
    expect(
      lines(utsAndNetworkSteps(context({ network: "host" }, { networks: [network] }))),
    ).toEqual(["sethostname box"]);
    expect(lines(parentSteps(context({ network: "host" }, { networks: [network] })))).not.toContain(
      "veth mbxaaaaaaaaaaaa eth0 {pid} minibox0 0",
    );
  });

  it("a second network: eth1 with its own veth; one default route, not through an internal one", () => {
    const internal = { ...network, ifname: "eth0", internal: true, hostIf: "mbxaaaaaaaaaaaa" };
    const second = {
      ...network,
      network: "web",
      bridge: "mbr-0123456789a",
      ip: "10.89.0.5",
      prefix: 24,
      gateway: "10.89.0.1",
      mac: "02:42:0a:59:00:05",
      hostIf: "mb1aaaaaaaaaaaa",
      ifname: "eth1",
    };
    expect(lines(parentSteps(context({}, { networks: [internal, second] })))).toContain(
      "veth mb1aaaaaaaaaaaa eth1 {pid} mbr-0123456789a 0",
    );
    expect(lines(utsAndNetworkSteps(context({}, { networks: [internal, second] })))).toEqual([
      "sethostname box",
      "ifup lo",
      "netif eth0 02:42:ac:1e:00:02 172.30.0.2/16",
      "netif eth1 02:42:0a:59:00:05 10.89.0.5/24",
      "route-default 10.89.0.1 eth1",
    ]);
  });
});

describe("dnsMembers", () => {
  it("serves the leases that carry names (user-defined networks), with each container's own nameservers", () => {
    expect(
      dnsMembers({
        a: {
          ip: "10.89.0.2",
          root: "/s",
          dns: { name: "web", aliases: ["www"], servers: ["198.18.0.53"] },
        },
        b: { ip: "10.89.0.3", root: "/s" },
      }),
    ).toEqual([{ id: "a", ip: "10.89.0.2", name: "web", aliases: ["www"], dns: ["198.18.0.53"] }]);
  });
});
