// The `inet minibox` table as libnftables JSON, generated from a description
// of networks and published ports: no kernel, no library — only the batch.
import { describe, expect, test } from "vitest";
import {
  applyFirewall,
  CHAINS,
  type FirewallDesc,
  firewallRuleset,
  removeFirewall,
} from "../../src/runtime/network/firewall.js";
import { errorLines } from "../../src/sys/nftables.js";

type Cmd = Record<string, Record<string, Record<string, unknown>>>;
type Rule = { chain: string; expr: Record<string, unknown>[] };

const NET = { name: "bridge", bridge: "minibox0", subnet: "172.30.0.0/16" };
const NET2 = { name: "web", bridge: "mbx-web", subnet: "172.31.0.0/16" };

const desc = (over: Partial<FirewallDesc> = {}): FirewallDesc => ({
  networks: [NET],
  ports: [],
  ...over,
});

const commands = (d: FirewallDesc) => firewallRuleset(d).nftables as Cmd[];
const rules = (d: FirewallDesc, chain: string): Rule[] =>
  commands(d)
    .filter((c) => c.add?.rule)
    .map((c) => c.add?.rule as unknown as Rule)
    .filter((r) => r.chain === chain);
/** A rule's expressions as one string, for `toContain` checks on what it matches. */
const text = (r: Rule) => JSON.stringify(r.expr);
const prefix = (addr: string, len: number) => ({ prefix: { addr, len } });

describe("the batch", () => {
  test("replaces the table atomically: add, delete, add, then chains and rules", () => {
    const cmds = commands(desc());
    const table = { family: "inet", name: "minibox" };
    expect(cmds.slice(0, 3)).toEqual([
      { add: { table } },
      { delete: { table } },
      { add: { table } },
    ]);
    const chains = cmds.filter((c) => c.add?.chain).map((c) => c.add?.chain);
    expect(chains).toEqual([
      {
        family: "inet",
        table: "minibox",
        name: "postrouting",
        type: "nat",
        hook: "postrouting",
        prio: 100,
        policy: "accept",
      },
      {
        family: "inet",
        table: "minibox",
        name: "prerouting",
        type: "nat",
        hook: "prerouting",
        prio: -100,
        policy: "accept",
      },
      {
        family: "inet",
        table: "minibox",
        name: "output",
        type: "nat",
        hook: "output",
        prio: -100,
        policy: "accept",
      },
      {
        family: "inet",
        table: "minibox",
        name: "forward",
        type: "filter",
        hook: "forward",
        prio: 0,
        policy: "accept",
      },
      { family: "inet", table: "minibox", name: "ports" },
    ]);
    for (const c of cmds.filter((c) => c.add?.rule)) {
      expect(c.add?.rule).toMatchObject({ family: "inet", table: "minibox" });
    }
  });

  test("is plain JSON (what libnftables parses)", () => {
    const d = desc({
      ports: [{ proto: "tcp", hostPort: 80, containerIp: "172.30.0.2", containerPort: 8080 }],
    });
    expect(JSON.parse(JSON.stringify(firewallRuleset(d)))).toEqual(firewallRuleset(d));
  });
});

describe("masquerade", () => {
  test("each subnet's traffic leaving through another interface is masqueraded", () => {
    const post = rules(desc({ networks: [NET, NET2] }), CHAINS.postrouting);
    const outbound = post.filter((r) => text(r).includes('"op":"!="'));
    expect(outbound.map((r) => r.expr)).toEqual([
      [
        {
          match: {
            op: "==",
            left: { payload: { protocol: "ip", field: "saddr" } },
            right: prefix("172.30.0.0", 16),
          },
        },
        { match: { op: "!=", left: { meta: { key: "oifname" } }, right: "minibox0" } },
        { masquerade: null },
      ],
      [
        {
          match: {
            op: "==",
            left: { payload: { protocol: "ip", field: "saddr" } },
            right: prefix("172.31.0.0", 16),
          },
        },
        { match: { op: "!=", left: { meta: { key: "oifname" } }, right: "mbx-web" } },
        { masquerade: null },
      ],
    ]);
  });

  test("hairpin: DNATed traffic from the subnet back onto its bridge is masqueraded", () => {
    const post = rules(desc(), CHAINS.postrouting);
    const hairpin = post.filter((r) => text(r).includes('"dnat"'));
    expect(hairpin).toHaveLength(1);
    expect(hairpin[0]?.expr).toEqual([
      { match: { op: "==", left: { meta: { key: "oifname" } }, right: "minibox0" } },
      { match: { op: "in", left: { ct: { key: "status" } }, right: "dnat" } },
      {
        match: {
          op: "==",
          left: { payload: { protocol: "ip", field: "saddr" } },
          right: prefix("172.30.0.0", 16),
        },
      },
      { masquerade: null },
    ]);
  });

  test("with routeLocalnet, DNATed traffic from 127/8 is masqueraded too (replies come back)", () => {
    const post = rules(desc({ routeLocalnet: true }), CHAINS.postrouting);
    const loop = post.filter((r) => text(r).includes('"127.0.0.0"'));
    expect(loop).toHaveLength(1);
    expect(text(loop[0] as Rule)).toContain('"right":"dnat"');
    expect(text(loop[0] as Rule)).toContain('"right":"minibox0"');
    expect(rules(desc(), CHAINS.postrouting).some((r) => text(r).includes("127.0.0.0"))).toBe(
      false,
    );
  });
});

describe("published ports", () => {
  const port = {
    proto: "tcp" as const,
    hostPort: 9090,
    containerIp: "172.30.0.2",
    containerPort: 8080,
  };

  test("prerouting and output jump to the ports chain for local destinations", () => {
    const fib = {
      match: { op: "==", left: { fib: { result: "type", flags: ["daddr"] } }, right: "local" },
    };
    const notLoop = {
      match: {
        op: "!=",
        left: { payload: { protocol: "ip", field: "daddr" } },
        right: prefix("127.0.0.0", 8),
      },
    };
    const jump = { jump: { target: "ports" } };
    expect(rules(desc(), CHAINS.prerouting).map((r) => r.expr)).toEqual([[fib, notLoop, jump]]);
    expect(rules(desc(), CHAINS.output).map((r) => r.expr)).toEqual([[fib, notLoop, jump]]);
    // From outside never 127/8; from the host itself only when route_localnet lets it out.
    expect(rules(desc({ routeLocalnet: true }), CHAINS.prerouting).map((r) => r.expr)).toEqual([
      [fib, notLoop, jump],
    ]);
    expect(rules(desc({ routeLocalnet: true }), CHAINS.output).map((r) => r.expr)).toEqual([
      [fib, jump],
    ]);
  });

  test("one DNAT rule per port, to the container's address and port", () => {
    const ports = rules(desc({ ports: [port] }), CHAINS.ports);
    expect(ports.map((r) => r.expr)).toEqual([
      [
        { match: { op: "==", left: { meta: { key: "nfproto" } }, right: "ipv4" } },
        {
          match: { op: "==", left: { payload: { protocol: "tcp", field: "dport" } }, right: 9090 },
        },
        { dnat: { family: "ip", addr: "172.30.0.2", port: 8080 } },
      ],
    ]);
  });

  test("udp matches udp's dport", () => {
    const ports = rules(desc({ ports: [{ ...port, proto: "udp" }] }), CHAINS.ports);
    expect(text(ports[0] as Rule)).toContain('{"protocol":"udp","field":"dport"}');
    expect(text(ports[0] as Rule)).not.toContain('"tcp"');
  });

  test("a range 8000-8002:80-82 is one rule per port, shifted together", () => {
    const ports = rules(
      desc({ ports: [{ ...port, hostPort: 8000, containerPort: 80, count: 3 }] }),
      CHAINS.ports,
    );
    const pairs = ports.map((r) => {
      const dport = r.expr.find((e) => JSON.stringify(e).includes("dport")) as {
        match: { right: number };
      };
      const dnat = r.expr.find((e) => "dnat" in e) as { dnat: { port: number } };
      return [dport.match.right, dnat.dnat.port];
    });
    expect(pairs).toEqual([
      [8000, 80],
      [8001, 81],
      [8002, 82],
    ]);
  });

  test("a host address restricts the rule to that destination; 0.0.0.0 means all", () => {
    const [only] = rules(desc({ ports: [{ ...port, hostIp: "127.0.0.1" }] }), CHAINS.ports);
    expect(only?.expr).toContainEqual({
      match: {
        op: "==",
        left: { payload: { protocol: "ip", field: "daddr" } },
        right: "127.0.0.1",
      },
    });
    const [all] = rules(desc({ ports: [{ ...port, hostIp: "0.0.0.0" }] }), CHAINS.ports);
    expect(text(all as Rule)).not.toContain("daddr");
  });

  test("invalid ports, protocols, addresses and subnets are refused with the port named", () => {
    const bad: [Partial<FirewallDesc>, RegExp][] = [
      [{ ports: [{ ...port, hostPort: 0 }] }, /9090|0:8080.*out of range/],
      [{ ports: [{ ...port, hostPort: 65535, count: 2 }] }, /out of range/],
      [{ ports: [{ ...port, proto: "sctp" as "tcp" }] }, /tcp or udp/],
      [{ ports: [{ ...port, hostIp: "::1" }] }, /IPv4/],
      [{ ports: [{ ...port, containerIp: "172.30.0.300" }] }, /IPv4/],
      [{ networks: [{ ...NET, subnet: "172.30.0.0" }] }, /invalid IPv4 subnet/],
      [{ networks: [{ ...NET, bridge: 'br" accept' }] }, /invalid bridge name/],
      [{ networks: [{ ...NET, bridge: "a-bridge-name-too-long" }] }, /invalid bridge name/],
    ];
    for (const [over, message] of bad) {
      expect(() => firewallRuleset(desc(over)), JSON.stringify(over)).toThrow(message);
    }
  });
});

describe("forward", () => {
  test("per network: replies in, the subnet out, published connections in, the rest to it dropped", () => {
    // The two isolation rules come first (see the next test).
    const fwd = rules(desc({ networks: [NET, NET2] }), CHAINS.forward).slice(2);
    expect(fwd).toHaveLength(8);
    const [replies, out, published, rest] = fwd.map(text);
    expect(replies).toContain(
      '{"op":"in","left":{"ct":{"key":"state"}},"right":["established","related"]}',
    );
    expect(replies).toContain('"oifname"}},"right":"minibox0"');
    expect(out).toContain('"iifname"}},"right":"minibox0"');
    expect(out).toContain('"field":"saddr"}},"right":{"prefix":{"addr":"172.30.0.0","len":16}}');
    expect(out).toContain('{"accept":null}');
    expect(published).toContain('"right":"dnat"');
    expect(rest).toContain('{"drop":null}');
    expect(text(fwd[4] as Rule)).toContain("mbx-web");
  });
});

describe("isolation and --internal", () => {
  const oifSet = (names: string[]) => ({
    match: { op: "==", left: { meta: { key: "oifname" } }, right: { set: names } },
  });
  const iif = (name: string, op = "==") => ({
    match: { op, left: { meta: { key: "iifname" } }, right: name },
  });
  const oif = (name: string, op = "==") => ({
    match: { op, left: { meta: { key: "oifname" } }, right: name },
  });

  test("one network: no isolation rule", () => {
    const fwd = rules(desc(), CHAINS.forward);
    expect(fwd.map(text).some((t) => t.includes('"set"'))).toBe(false);
  });

  test("two networks: traffic from one bridge to the other is dropped, before any accept", () => {
    const fwd = rules(desc({ networks: [NET, NET2] }), CHAINS.forward);
    expect(fwd.slice(0, 2).map((r) => r.expr)).toEqual([
      [iif("minibox0"), oifSet(["mbx-web"]), { drop: null }],
      [iif("mbx-web"), oifSet(["minibox0"]), { drop: null }],
    ]);
  });

  test("internal: no masquerade, nothing in or out of its bridge, no accept for it", () => {
    const internal = { ...NET2, internal: true };
    const d = desc({ networks: [NET, internal] });
    const post = rules(d, CHAINS.postrouting).map(text);
    expect(post.some((t) => t.includes("mbx-web"))).toBe(false);
    expect(post.some((t) => t.includes("minibox0"))).toBe(true);
    const fwd = rules(d, CHAINS.forward);
    const forInternal = fwd.filter((r) => text(r).includes("mbx-web"));
    expect(forInternal.map((r) => r.expr)).toEqual([
      [iif("minibox0"), oifSet(["mbx-web"]), { drop: null }],
      [iif("mbx-web"), oif("mbx-web", "!="), { drop: null }],
      [iif("mbx-web", "!="), oif("mbx-web"), { drop: null }],
    ]);
    expect(fwd.map(text).filter((t) => t.includes("accept") && t.includes("mbx-web"))).toEqual([]);
  });
});

describe("the 127/8 guard (route_localnet, CVE-2020-8558)", () => {
  test("absent without routeLocalnet", () => {
    const cmds = commands(desc());
    expect(JSON.stringify(cmds)).not.toContain('"guard"');
  });

  test("with routeLocalnet: a raw-priority prerouting chain drops 127/8 not arriving on lo", () => {
    const d = desc({ routeLocalnet: true });
    const chain = commands(d).find((c) => c.add?.chain?.name === "guard");
    expect(chain?.add?.chain).toMatchObject({ type: "filter", hook: "prerouting", prio: -300 });
    expect(rules(d, CHAINS.guard).map((r) => r.expr)).toEqual([
      [
        { match: { op: "!=", left: { meta: { key: "iifname" } }, right: "lo" } },
        {
          match: {
            op: "==",
            left: { payload: { protocol: "ip", field: "daddr" } },
            right: prefix("127.0.0.0", 8),
          },
        },
        { drop: null },
      ],
    ]);
  });
});

describe("applying", () => {
  test("applyFirewall sends the ruleset as one batch; with nothing left it removes the table", () => {
    const sent: string[] = [];
    const run = (cmd: string) => {
      sent.push(cmd);
      return "";
    };
    applyFirewall(desc(), run);
    applyFirewall({ networks: [], ports: [] }, run);
    removeFirewall(run);
    expect(sent).toHaveLength(3);
    expect(JSON.parse(sent[0] as string)).toEqual(firewallRuleset(desc()));
    const removal = {
      nftables: [
        { add: { table: { family: "inet", name: "minibox" } } },
        { delete: { table: { family: "inet", name: "minibox" } } },
      ],
    };
    expect(JSON.parse(sent[1] as string)).toEqual(removal);
    expect(JSON.parse(sent[2] as string)).toEqual(removal);
  });

  test("libnftables' error text is reduced to its message lines", () => {
    const detail =
      'Error: Object item not found: table\n{"nftables":[{"add":{}}]}\n        ^\ninternal:0:0-0: Error: Parsing command array at index 3 failed.\n';
    expect(errorLines(detail)).toBe(
      "Error: Object item not found: table; Error: Parsing command array at index 3 failed.",
    );
  });
});
