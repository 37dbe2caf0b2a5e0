/**
 * The host side of every network, made to match the lease files in one
 * place under one lock (`syncHost`): the bridges of networks in use up and
 * idle ones deleted, ip_forward (and route_localnet while a port is
 * published to the host's loopback) on, the firewall table for every
 * network and every running container's published ports, minibox's accept
 * rules in other tables' drop-policy forward chains (host-forward.ts), and
 * each user-defined network's resolver fed from its leases (dns.ts); with
 * no network in use, none of it, and the host's settings as they were.
 *
 * The firewall description must hold everything at once (firewall.ts), so
 * every change is made here, from the lease files: no command's view of
 * "its" rules can drop another's. endpoint.ts calls it after each attach,
 * detach and sweep.
 */
import { mkdir } from "node:fs/promises";
import { NETWORK_ROOT, rootLayout } from "../../layout.js";
import { withLock } from "../../sys/lock.js";
import { listNft, runNft } from "../../sys/nftables.js";
import type { Tracer } from "../trace.js";
import { type DnsMember, stopIdleResolver, syncResolver } from "./dns.js";
import {
  applyFirewall,
  type FirewallDesc,
  type PublishedPort,
  removeFirewall,
} from "./firewall.js";
import { forwardDropChains, passThroughCommands } from "./host-forward.js";
import { type Leases, readLeases } from "./ipam.js";
import { type NetlinkHelper, netlinkHelper } from "./netlink.js";
import { DEFAULT_NETWORK, listNetworks, type NetworkRecord } from "./networks.js";
import { needsRouteLocalnet } from "./ports.js";
import { networkPublishedPorts } from "./publish.js";
import { parseCidr } from "./subnet.js";
import { enableForwarding, restoreForwarding, restoreSome, routeLocalnetKey } from "./sysctl.js";

/** What the host side is done with (tests give their own). */
export interface HostOps {
  /** The network root (layout.ts): NETWORK_ROOT when absent; unit tests give a directory of their own. */
  dir?: string;
  /** dns.ts syncResolver; unit tests give one that starts nothing. */
  resolver?: typeof syncResolver;
  helper: NetlinkHelper;
  /** libnftables; the real one when absent. */
  nft?: (cmd: string) => string;
  /** Where the sysctls are; /proc/sys when absent (unit tests give a directory of their own). */
  procSys?: string;
  /** libnftables' `list ruleset`, for other tables' forward chains (host-forward.ts); the real one when absent. */
  listRuleset?: () => unknown[];
  trace: Tracer;
}

/** Where the network state is: the test's directory, else the host's (layout.ts). */
export function networkRootOf(ops?: Partial<HostOps>): string {
  return ops?.dir ?? NETWORK_ROOT;
}

export function hostOps(trace: Tracer, ops?: Partial<HostOps>): HostOps & { dir: string } {
  return { ...ops, dir: networkRootOf(ops), helper: ops?.helper ?? netlinkHelper(), trace };
}

/** Time `fn` and trace it as `what` (the host-side steps of --trace). */
export function timed<T>(trace: Tracer, what: (r: T) => string, fn: () => T): T {
  const t = performance.now();
  const r = fn();
  trace(what(r), performance.now() - t);
  return r;
}

/** The firewall for the networks that have containers and their running containers' ports (pure). */
export function firewallFor(
  inUse: readonly NetworkRecord[],
  ports: PublishedPort[] = [],
): FirewallDesc {
  return {
    networks: inUse.map((n) => ({
      name: n.name,
      bridge: n.bridge,
      subnet: n.subnet,
      internal: n.internal,
    })),
    ports,
    routeLocalnet: needsRouteLocalnet(ports),
  };
}

/** Networks with at least one lease (with their leases), and those with none. */
async function networksByUse(root: string) {
  const inUse: NetworkRecord[] = [];
  const idle: NetworkRecord[] = [];
  const leasesOf = new Map<string, Leases>();
  for (const n of await listNetworks(root)) {
    const leases = await readLeases(root, n).catch(() => ({}));
    leasesOf.set(n.id, leases);
    (Object.keys(leases).length > 0 ? inUse : idle).push(n);
  }
  return { inUse, idle, leasesOf };
}

/** What a user-defined network's resolver answers for: every lease's names (pure). */
export function dnsMembers(leases: Leases): DnsMember[] {
  return Object.entries(leases).flatMap(([id, l]) =>
    l.dns ? [{ id, ip: l.ip, name: l.dns.name, aliases: l.dns.aliases, dns: l.dns.servers }] : [],
  );
}

/** The one lock every change of the host side is made under (bridges, sysctls, firewall, ports). */
export async function withHostLock<T>(root: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(rootLayout(root).locks, { recursive: true, mode: 0o700 });
  return withLock(rootLayout(root).lock("network-host"), fn);
}

/**
 * Make the host match the lease files: bridges of networks in use up,
 * forwarding on and the firewall for them and their containers' published
 * ports; idle networks' bridges deleted; with no network in use, no table
 * and ip_forward as the host had it.
 */
export async function syncHost(ops: HostOps & { dir: string }): Promise<void> {
  const layout = rootLayout(ops.dir);
  await withHostLock(ops.dir, async () => {
    const { inUse, idle, leasesOf } = await networksByUse(ops.dir);
    for (const n of idle) {
      ops.helper.deleteLink(n.bridge);
      await stopIdleResolver(layout.network(n.id), n, ops.trace);
    }
    if (inUse.length === 0) {
      timed(
        ops.trace,
        () => "firewall: table inet minibox removed",
        () => removeFirewall(ops.nft),
      );
      syncPassThrough([], ops);
      restoreForwarding(layout.hostSysctls, { procSys: ops.procSys });
      return;
    }
    for (const n of inUse) {
      const cidr = `${n.gateway}/${parseCidr(n.subnet).prefix}`;
      timed(
        ops.trace,
        () => `bridge ${n.bridge} ${cidr} up`,
        () => ops.helper.ensureBridge(n.bridge, cidr, 0),
      );
    }
    const ports: PublishedPort[] = [];
    for (const n of inUse)
      ports.push(...(await networkPublishedPorts(ops.dir, n, leasesOf.get(n.id) ?? {})));
    const desc = firewallFor(inUse, ports);
    const localnet = desc.routeLocalnet === true;
    enableForwarding(layout.hostSysctls, { procSys: ops.procSys });
    // route_localnet only while the guard is in the table: put back before the guard goes, set after it came.
    if (!localnet) routeLocalnet(layout.hostSysctls, inUse, false, ops.procSys);
    timed(
      ops.trace,
      () =>
        `firewall: table inet minibox for ${inUse.map((n) => n.subnet).join(", ")}${ports.length ? `, ${ports.length} published port(s)` : ""}`,
      () => applyFirewall(desc, ops.nft),
    );
    if (localnet) routeLocalnet(layout.hostSysctls, inUse, true, ops.procSys);
    syncPassThrough(
      inUse.filter((n) => !n.internal).map((n) => n.subnet),
      ops,
    );
    // Once the bridges (and so the gateways it listens on) are up.
    for (const n of inUse.filter((x) => x.name !== DEFAULT_NETWORK)) {
      const members = dnsMembers(leasesOf.get(n.id) ?? {});
      await (ops.resolver ?? syncResolver)(layout.network(n.id), n, members, { trace: ops.trace });
    }
  });
}

/** minibox's accept rules in other tables' drop-policy forward chains, for `subnets` (host-forward.ts). */
function syncPassThrough(subnets: string[], ops: HostOps): void {
  const ruleset = (ops.listRuleset ?? (() => listNft("list ruleset")))();
  const batch = passThroughCommands(ruleset, subnets);
  if (batch.length === 0) return;
  const chains = forwardDropChains(ruleset).map((c) => `${c.family} ${c.table} ${c.name}`);
  timed(
    ops.trace,
    () =>
      subnets.length > 0 && chains.length > 0
        ? `firewall: accept ${subnets.join(", ")} in ${chains.join(", ")} (policy drop)`
        : "firewall: accept rules in other tables removed",
    () => (ops.nft ?? runNft)(JSON.stringify({ nftables: batch })),
  );
}

/**
 * route_localnet of the networks' bridges: 1 while some port is published
 * to the host's loopback (see firewall.ts), else put back as it was found.
 */
function routeLocalnet(
  stateFile: string,
  inUse: readonly NetworkRecord[],
  on: boolean,
  procSys: string | undefined,
): void {
  const bridges = inUse.map((n) => n.bridge);
  if (on) enableForwarding(stateFile, { procSys, routeLocalnet: bridges });
  else restoreSome(stateFile, bridges.map(routeLocalnetKey), { procSys });
}
