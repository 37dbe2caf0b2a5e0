/**
 * minibox's firewall: one nftables table of its own, `inet minibox` (as
 * netavark keeps `inet netavark`), generated whole from a description of the
 * networks and published ports by pure functions, and applied in one
 * libnftables batch (one netlink transaction: the old table is replaced by
 * the new one atomically, no packet sees half a ruleset).
 *
 * The table, for a network on bridge B with subnet S:
 *
 *   postrouting (nat, srcnat)  ip saddr S oifname != B masquerade        outbound
 *                              oifname B ct status dnat ip saddr S masq.  hairpin
 *                              oifname B ct status dnat ip saddr 127/8 …  loopback publishing
 *   prerouting  (nat, dstnat)  fib daddr type local, daddr not 127/8 → ports
 *   output      (nat, -100)    fib daddr type local → ports (127/8 only with routeLocalnet)
 *   ports                      one DNAT rule per published port
 *   forward     (filter)       from one minibox bridge to another: dropped
 *                              (Docker's isolation between networks);
 *                              replies in, traffic out of S, published ports in;
 *                              anything else from outside to S is dropped
 *
 * An --internal network gets no masquerade and its forward rules drop
 * everything entering or leaving its bridge (Docker's internal networks):
 * its containers reach each other and the host's gateway address, nothing
 * beyond.
 *   guard       (filter, raw)  with routeLocalnet: iifname != lo, daddr 127/8 → drop
 *
 * Why hairpin masquerade: a container reaching its own (or a neighbour's)
 * published port through a host address is DNATed back onto the bridge; the
 * reply would go straight to the client over the bridge, bypassing the
 * conntrack entry that undoes the DNAT, and the client drops it. Masquerading
 * makes the reply come back through the host. Where br_netfilter is loaded
 * (Docker loads it; its bridge-nf-call-iptables defaults to 1), the DNAT happens on the bridge path and the packet must leave
 * by the port it came in on: the container's bridge port needs hairpin mode
 * (IFLA_BRPORT_MODE), as Docker sets it — the executor's veth step sets it
 * (native/steps-net.c), not this table.
 *
 * Why route_localnet and the guard: `-p 127.0.0.1:P:C` DNATs the host's own
 * 127.0.0.1 traffic to a container, and the kernel refuses to route a packet
 * with a 127/8 source out of a non-loopback device unless the device has
 * route_localnet=1 (then masquerade gives it the bridge's address). That
 * setting also lets a container address the host's loopback services through
 * the gateway (CVE-2020-8558, moby #45610), so the guard drops 127/8
 * destinations arriving on any interface but lo, before conntrack and NAT.
 * The prerouting jump skips 127/8 for the same reason: a LAN host sending to
 * 127.0.0.1 would otherwise be DNATed to the container before any martian
 * check could see the 127/8 destination.
 *
 * What the forward chain can and cannot do: every base chain on the forward
 * hook runs, in every table, and a packet is forwarded only if none drops it.
 * An `accept` here ends this chain only; a DROP policy in another table (the
 * `ip filter FORWARD` chain Docker sets to DROP through iptables-nft, or
 * iptables-legacy's, which nftables cannot even see) still drops minibox's
 * traffic (netavark's nftables driver has the same limit, netavark #977). The
 * way through is outside this table: accept rules in that other chain, which
 * host-forward.ts inserts and removes.
 */
import { MiniboxError } from "../../errors.js";
import { listNft, runNft } from "../../sys/nftables.js";

export interface FirewallNetwork {
  name: string;
  /** The bridge device (≤ 15 characters). */
  bridge: string;
  /** IPv4 CIDR, e.g. "172.30.0.0/16". */
  subnet: string;
  /** --internal: no outbound NAT, no traffic in or out of the bridge but replies to the host. */
  internal?: boolean;
}

export interface PublishedPort {
  proto: "tcp" | "udp";
  /** Only traffic to this host address (Docker's HOST_IP); all local addresses when absent. */
  hostIp?: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
  /** A range `8000-8002:80-82`: hostPort+i → containerPort+i for i < count (default 1). */
  count?: number;
}

export interface FirewallDesc {
  networks: FirewallNetwork[];
  ports: PublishedPort[];
  /** Loopback publishing through route_localnet (adds the 127/8 guard). */
  routeLocalnet?: boolean;
}

/** libnftables' JSON: a batch of commands, or a listing. */
export interface NftJson {
  nftables: Record<string, unknown>[];
}

type Expr = Record<string, unknown>;

export const FAMILY = "inet";
export const TABLE = "minibox";
export const CHAINS = {
  postrouting: "postrouting",
  prerouting: "prerouting",
  output: "output",
  ports: "ports",
  forward: "forward",
  guard: "guard",
} as const;

const LOOPBACK_NET = "127.0.0.0/8";
const table = { family: FAMILY, name: TABLE };
/** How chains and rules name their table. */
const inTable = { family: FAMILY, table: TABLE };

// --- expressions (libnftables JSON schema, libnftables-json(5)) ---

function prefix(cidr: string): Expr {
  const [addr, len] = cidr.split("/");
  return { prefix: { addr, len: Number(len) } };
}

function match(left: Expr, right: unknown, op = "=="): Expr {
  return { match: { op, left, right } };
}

const meta = (key: string): Expr => ({ meta: { key } });
const payload = (protocol: string, field: string): Expr => ({ payload: { protocol, field } });
const ipSaddr = (right: unknown, op = "=="): Expr => match(payload("ip", "saddr"), right, op);
const ipDaddr = (right: unknown, op = "=="): Expr => match(payload("ip", "daddr"), right, op);
const oifname = (name: string, op = "=="): Expr => match(meta("oifname"), name, op);
const iifname = (name: string, op = "=="): Expr => match(meta("iifname"), name, op);
const ctStatusDnat: Expr = match({ ct: { key: "status" } }, "dnat", "in");
const localDaddr: Expr = match({ fib: { result: "type", flags: ["daddr"] } }, "local");
const MASQUERADE: Expr = { masquerade: null };
const ACCEPT: Expr = { accept: null };
const DROP: Expr = { drop: null };

function rule(chain: string, expr: Expr[]): Record<string, unknown> {
  return { add: { rule: { ...inTable, chain, expr } } };
}

function baseChain(name: string, type: string, hook: string, prio: number) {
  return { add: { chain: { ...inTable, name, type, hook, prio, policy: "accept" } } };
}

// --- validation: the description comes from user input (-p, --subnet) ---

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function isIpv4(s: string): boolean {
  const m = IPV4.exec(s);
  return m?.slice(1).every((o) => Number(o) <= 255) ?? false;
}

function checkNetwork(n: FirewallNetwork): void {
  const [addr, len] = n.subnet.split("/");
  const bits = Number(len);
  if (!addr || !isIpv4(addr) || !Number.isInteger(bits) || bits < 1 || bits > 32) {
    throw new MiniboxError(`network ${n.name}: invalid IPv4 subnet "${n.subnet}"`);
  }
  // IFNAMSIZ is 16 with the NUL; a quote or space would not be a device name anyway.
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(n.bridge)) {
    throw new MiniboxError(`network ${n.name}: invalid bridge name "${n.bridge}"`);
  }
}

function checkPort(p: PublishedPort): void {
  const count = p.count ?? 1;
  const what = `${p.hostIp ? `${p.hostIp}:` : ""}${p.hostPort}:${p.containerPort}/${p.proto}`;
  const inRange = (port: number) =>
    Number.isInteger(port) && port >= 1 && port + count - 1 <= 65535;
  if (!Number.isInteger(count) || count < 1 || !inRange(p.hostPort) || !inRange(p.containerPort)) {
    throw new MiniboxError(`published port ${what}: port out of range`);
  }
  if (p.proto !== "tcp" && p.proto !== "udp") {
    throw new MiniboxError(`published port ${what}: protocol must be tcp or udp`);
  }
  if (!isIpv4(p.containerIp) || (p.hostIp !== undefined && !isIpv4(p.hostIp))) {
    throw new MiniboxError(`published port ${what}: only IPv4 addresses are supported`);
  }
}

/** Throws a MiniboxError naming the first network or port that cannot be written as rules. */
export function checkFirewallDesc(desc: FirewallDesc): void {
  desc.networks.forEach(checkNetwork);
  desc.ports.forEach(checkPort);
}

// --- the chains' rules ---

/** Outbound masquerade and hairpin masquerade, per network. */
export function postroutingRules(desc: FirewallDesc): Record<string, unknown>[] {
  const chain = CHAINS.postrouting;
  return desc.networks
    .filter((n) => !n.internal)
    .flatMap((n) => {
      const subnet = prefix(n.subnet);
      const rules = [
        rule(chain, [ipSaddr(subnet), oifname(n.bridge, "!="), MASQUERADE]),
        rule(chain, [oifname(n.bridge), ctStatusDnat, ipSaddr(subnet), MASQUERADE]),
      ];
      if (desc.routeLocalnet) {
        rules.push(
          rule(chain, [oifname(n.bridge), ctStatusDnat, ipSaddr(prefix(LOOPBACK_NET)), MASQUERADE]),
        );
      }
      return rules;
    });
}

/**
 * Which packets go to the ports chain: those for a local address. From
 * outside never 127/8 (see the module comment); from the host itself 127/8
 * only when route_localnet lets the DNATed packet leave through the bridge.
 */
export function dnatEntryRules(desc: FirewallDesc): Record<string, unknown>[] {
  const jump: Expr = { jump: { target: CHAINS.ports } };
  const notLoopback = ipDaddr(prefix(LOOPBACK_NET), "!=");
  return [
    rule(CHAINS.prerouting, [localDaddr, notLoopback, jump]),
    rule(CHAINS.output, desc.routeLocalnet ? [localDaddr, jump] : [localDaddr, notLoopback, jump]),
  ];
}

/** One DNAT rule per published port (a range is one rule per port: nft 1.0 cannot shift a range). */
export function portRules(ports: PublishedPort[]): Record<string, unknown>[] {
  return ports.flatMap((p) =>
    Array.from({ length: p.count ?? 1 }, (_, i) => {
      const expr: Expr[] = [match(meta("nfproto"), "ipv4")];
      if (p.hostIp && p.hostIp !== "0.0.0.0") expr.push(ipDaddr(p.hostIp));
      expr.push(match(payload(p.proto, "dport"), p.hostPort + i));
      expr.push({ dnat: { family: "ip", addr: p.containerIp, port: p.containerPort + i } });
      return rule(CHAINS.ports, expr);
    }),
  );
}

/**
 * Per network: replies in, everything from the subnet out, published (DNATed)
 * connections in; any other packet from outside to a container is dropped,
 * as Docker does since 28.0 — a LAN host routing the subnet through this host
 * reaches only what is published. Before those, the isolation rules: nothing
 * crosses from one minibox bridge to another, and nothing enters or leaves an
 * internal network's bridge.
 */
export function forwardRules(networks: FirewallNetwork[]): Record<string, unknown>[] {
  const chain = CHAINS.forward;
  const established: Expr = match({ ct: { key: "state" } }, ["established", "related"], "in");
  const perNetwork = networks.flatMap((n) => {
    const subnet = prefix(n.subnet);
    if (n.internal) return [];
    return [
      rule(chain, [oifname(n.bridge), ipDaddr(subnet), established, ACCEPT]),
      rule(chain, [iifname(n.bridge), ipSaddr(subnet), ACCEPT]),
      rule(chain, [oifname(n.bridge), ipDaddr(subnet), ctStatusDnat, ACCEPT]),
      rule(chain, [oifname(n.bridge), ipDaddr(subnet), DROP]),
    ];
  });
  return [...isolationRules(networks), ...perNetwork];
}

/**
 * Docker's DOCKER-ISOLATION chains in one rule per network: a packet that
 * came in on one minibox bridge and leaves by another is dropped (two
 * networks are two separate L2 segments; only published ports join them).
 * An internal network's bridge lets nothing in or out at all.
 */
export function isolationRules(networks: FirewallNetwork[]): Record<string, unknown>[] {
  const chain = CHAINS.forward;
  return networks.flatMap((n) => {
    if (n.internal) {
      return [
        rule(chain, [iifname(n.bridge), oifname(n.bridge, "!="), DROP]),
        rule(chain, [iifname(n.bridge, "!="), oifname(n.bridge), DROP]),
      ];
    }
    const others = networks.filter((o) => o.bridge !== n.bridge).map((o) => o.bridge);
    if (others.length === 0) return [];
    return [rule(chain, [iifname(n.bridge), match(meta("oifname"), { set: others }), DROP])];
  });
}

/** With route_localnet: no packet for 127/8 may arrive on anything but lo (CVE-2020-8558). */
export function guardRules(): Record<string, unknown>[] {
  return [rule(CHAINS.guard, [iifname("lo", "!="), ipDaddr(prefix(LOOPBACK_NET)), DROP])];
}

/** The table's chains: base chains with their hooks and priorities, and the ports chain. */
export function chainCommands(desc: FirewallDesc): Record<string, unknown>[] {
  const chains = [
    // srcnat = 100, dstnat = -100, filter = 0, raw = -300 (nft's named priorities).
    baseChain(CHAINS.postrouting, "nat", "postrouting", 100),
    baseChain(CHAINS.prerouting, "nat", "prerouting", -100),
    baseChain(CHAINS.output, "nat", "output", -100),
    baseChain(CHAINS.forward, "filter", "forward", 0),
    { add: { chain: { ...inTable, name: CHAINS.ports } } },
  ];
  if (desc.routeLocalnet) chains.push(baseChain(CHAINS.guard, "filter", "prerouting", -300));
  return chains;
}

/**
 * The whole batch that makes `inet minibox` exactly `desc`: `add table` (so
 * the delete cannot fail on a first run), `delete table`, then the new table.
 * libnftables sends it as one transaction.
 */
export function firewallRuleset(desc: FirewallDesc): NftJson {
  checkFirewallDesc(desc);
  return {
    nftables: [
      ...removalCommands(),
      { add: { table } },
      ...chainCommands(desc),
      ...postroutingRules(desc),
      ...dnatEntryRules(desc),
      ...portRules(desc.ports),
      ...forwardRules(desc.networks),
      ...(desc.routeLocalnet ? guardRules() : []),
    ],
  };
}

/** Delete the table whether or not it exists (add is a no-op on an existing table). */
export function removalCommands(): Record<string, unknown>[] {
  return [{ add: { table } }, { delete: { table } }];
}

// --- applying (the only impure part) ---

/**
 * Make the kernel's `inet minibox` table match `desc`, replacing whatever was
 * there in one transaction; with no network and no port, remove it. `desc`
 * is everything — every network and every running container's ports — so two
 * commands computing it at once would each drop the other's rules: callers
 * hold one lock from reading their state to this call.
 */
export function applyFirewall(desc: FirewallDesc, run: (cmd: string) => string = runNft): void {
  if (desc.networks.length === 0 && desc.ports.length === 0) removeFirewall(run);
  else run(JSON.stringify(firewallRuleset(desc)));
}

/** Remove `inet minibox`; nothing happens if it is not there. */
export function removeFirewall(run: (cmd: string) => string = runNft): void {
  run(JSON.stringify({ nftables: removalCommands() }));
}

/** The table as libnftables lists it now (JSON items), or undefined when there is none. */
export function currentFirewall(): unknown[] | undefined {
  const all = listNft("list tables");
  const present = all.some((i) => {
    const t = (i as { table?: { family: string; name: string } }).table;
    return t?.family === FAMILY && t.name === TABLE;
  });
  return present ? listNft(`list table ${FAMILY} ${TABLE}`) : undefined;
}
