/**
 * A container on a bridge network (`run --network bridge`, or a
 * user-defined one): what `run` and `start` do before the executor starts,
 * per network, and what is undone when the container stops, is removed, or
 * is found dead by the sweep. A container on several networks has one
 * endpoint each: eth0, eth1… with host ends mbx<id12>, mb1<id12>…
 * (`network connect` makes one on a running container: connect.ts).
 *
 *   attach   lease an address (ipam.ts), then under the host lock: the
 *            bridge up with its gateway address, ip_forward on (the host's
 *            value saved), the firewall table re-made for every network in use
 *   plan     [parent] veth (host end mbx<id12> on the bridge, peer eth0 in
 *            the init's netns), [child] eth0's MAC/address and the default route
 *   detach   release the lease, delete the host end if it is still there,
 *            then the same host sync: the firewall without the network when
 *            it has no container left (its DNS resolver stopped, if it had
 *            one), and with the last container of all
 *            the table goes, ip_forward is restored and the bridge deleted
 *
 * Why the bridge goes with its last container: a bridge left behind keeps
 * its gateway address routed on the host for a subnet no container uses;
 * making it again costs one netlink request on the next run. Podman's
 * netavark does the same.
 *
 * Why the lease comes before the host lock: the sync decides from the
 * lease files which bridges are in use, so a lease taken first can never
 * see its bridge deleted by a concurrent detach of another container.
 *
 * The firewall description must hold everything at once (firewall.ts), so
 * every change is made by the one `syncHost` under one lock, from the
 * lease files: no command's view of "its" rules can drop another's.
 * Published ports (-p) take part the same way: each running container's
 * bindings are a file next to the leases (publish.ts), read by the sync.
 */
import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { MiniboxError } from "../../errors.js";
import { NETWORK_ROOT, rootLayout } from "../../layout.js";
import { withLock } from "../../sys/lock.js";
import { listNft, runNft } from "../../sys/nftables.js";
import { hostVethName } from "../plan/network-steps.js";
import type { Tracer } from "../trace.js";
import { type DnsMember, stopIdleResolver, syncResolver } from "./dns.js";
import {
  applyFirewall,
  type FirewallDesc,
  type PublishedPort,
  removeFirewall,
} from "./firewall.js";
import { forwardDropChains, passThroughCommands } from "./host-forward.js";
import {
  allocate,
  type Lease,
  type Leases,
  readLeases,
  reconcileLocked,
  release,
  withLeaseLock,
} from "./ipam.js";
import { type NetlinkHelper, netlinkHelper } from "./netlink.js";
import {
  DEFAULT_NETWORK,
  ensureDefaultNetwork,
  getNetwork,
  listNetworks,
  type NetworkRecord,
  readNetwork,
} from "./networks.js";
import { needsRouteLocalnet, type PortBinding, type PortRequest } from "./ports.js";
import { networkPublishedPorts, removePortFile, reservePorts } from "./publish.js";
import { parseCidr } from "./subnet.js";
import { enableForwarding, restoreForwarding, restoreSome, routeLocalnetKey } from "./sysctl.js";

/** A container's place on a network, kept in its state.json while it runs. */
export interface NetworkEndpoint {
  /** The network's name ("bridge") and ID. */
  network: string;
  networkId: string;
  /** The bridge device (minibox0). */
  bridge: string;
  ip: string;
  prefix: number;
  gateway: string;
  mac: string;
  /** The host end of the container's veth (mbx<id12> for eth0, see hostVethName). */
  hostIf: string;
  /** The interface in the container: eth0, eth1… (state written before had only eth0). */
  ifname?: string;
  /** --network-alias / connect --alias: more names for it on this network. */
  aliases?: string[];
  /** inspect's EndpointID: 64 hex, new for each attachment. */
  endpointId?: string;
  /** The network is --internal: no default route through it. */
  internal?: boolean;
}

/** Which network a container asks to be on, and how (kept in its state while it is stopped too). */
export interface EndpointRequest {
  /** The network's name ("bridge" for the default). */
  network: string;
  aliases?: string[];
  /** --ip: this address rather than the lowest free one. */
  ip?: string;
}

/** How one attachment is made: the request, and the interface it becomes. */
export interface AttachOptions {
  /** 0 for eth0, 1 for eth1… (also picks the host end's name). */
  index: number;
  aliases?: string[];
  ip?: string;
  /** The container's name and its own nameservers (--dns), for a user-defined network's resolver. */
  name?: string;
  dns?: string[];
}

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

function hostOps(trace: Tracer, ops?: Partial<HostOps>): HostOps & { dir: string } {
  return { ...ops, dir: networkRootOf(ops), helper: ops?.helper ?? netlinkHelper(), trace };
}

/** Time `fn` and trace it as `what` (the host-side steps of --trace). */
function timed<T>(trace: Tracer, what: (r: T) => string, fn: () => T): T {
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

/**
 * Put a container of the store `root` on the default bridge network: its
 * lease, then the host side. `notice` is called once, when the network was
 * just made on another subnet than the first choice.
 */
export async function attachDefaultNetwork(
  root: string,
  containerId: string,
  trace: Tracer,
  notice: (line: string) => void,
  ops?: Partial<HostOps>,
  how: AttachOptions = { index: 0 },
): Promise<NetworkEndpoint> {
  const host = hostOps(trace, ops);
  const made = await ensureDefaultNetwork(host.dir, undefined, root);
  if (made.notice) notice(made.notice);
  return attachNetwork(root, containerId, made.network, how, trace, ops);
}

/**
 * Put the container of the store `root` on the network a request names
 * (the default bridge made on first use), as eth<index>.
 */
export async function attachRequest(
  root: string,
  container: { id: string; name: string; dns?: string[] },
  req: EndpointRequest,
  index: number,
  trace: Tracer,
  notice: (line: string) => void,
  ops?: Partial<HostOps>,
): Promise<NetworkEndpoint> {
  const how = { index, aliases: req.aliases, ip: req.ip, name: container.name, dns: container.dns };
  if (req.network === DEFAULT_NETWORK) {
    return attachDefaultNetwork(root, container.id, trace, notice, ops, how);
  }
  const network = await getNetwork(networkRootOf(ops), req.network);
  return attachNetwork(root, container.id, network, how, trace, ops);
}

/**
 * Put the container of the store `root` on `network` as interface
 * eth<index>: its lease (the requested address, or the lowest free), then
 * the host side (bridge, forwarding, firewall). The lease is released
 * again if the host side fails.
 */
export async function attachNetwork(
  root: string,
  containerId: string,
  network: NetworkRecord,
  how: AttachOptions,
  trace: Tracer,
  ops?: Partial<HostOps>,
): Promise<NetworkEndpoint> {
  const host = hostOps(trace, ops);
  let t = performance.now();
  // The default bridge has no name resolution (Docker's rule).
  const dns =
    how.name && network.name !== DEFAULT_NETWORK
      ? { name: how.name, aliases: how.aliases ?? [], servers: how.dns }
      : undefined;
  const lease = await allocate(host.dir, network, containerId, { ip: how.ip, owner: root, dns });
  trace(`network ${network.name}: lease ${lease.ip}/${lease.prefix}`, performance.now() - t);
  const endpoint = endpointOf(network, containerId, lease, how);
  t = performance.now();
  try {
    await syncHost(host);
  } catch (err) {
    await release(host.dir, network, containerId).catch(() => false);
    throw err;
  }
  trace(`network ${network.name}: host side ready`, performance.now() - t);
  return endpoint;
}

/** The endpoint record for a lease (pure but for the random EndpointID). */
function endpointOf(
  network: NetworkRecord,
  containerId: string,
  lease: Lease,
  how: AttachOptions,
): NetworkEndpoint {
  return {
    network: network.name,
    networkId: network.id,
    bridge: network.bridge,
    ...lease,
    hostIf: hostVethName(containerId, how.index),
    ifname: `eth${how.index}`,
    aliases: how.aliases ?? [],
    endpointId: randomBytes(32).toString("hex"),
    internal: network.internal,
  };
}

/**
 * -p/-P: choose the host ports of an attached container and record them
 * (under the host lock, so concurrent runs never pick the same one), then
 * sync the host so the DNAT rules include them. The executor holds the
 * ports (plan/port-steps.ts); a failure from here on is undone by
 * detachNetwork, which forgets the ports with the lease.
 */
export async function publishPorts(
  containerId: string,
  endpoint: NetworkEndpoint,
  requests: readonly PortRequest[],
  trace: Tracer,
  ops?: Partial<HostOps>,
): Promise<PortBinding[]> {
  if (requests.length === 0) return [];
  const t = performance.now();
  const host = hostOps(trace, ops);
  const network = await readNetwork(host.dir, endpoint.networkId);
  if (!network) throw new MiniboxError(`network ${endpoint.network} not found`);
  const all = await listNetworks(host.dir);
  const bindings = await withHostLock(host.dir, () =>
    reservePorts(host.dir, network, containerId, requests, all),
  );
  trace(`ports: ${bindings.length} host port(s) chosen`, performance.now() - t);
  await syncHost(host);
  return bindings;
}

/**
 * Undo a container's attachment: release its lease, delete its veth's
 * host end if the kernel has not already (it goes with the netns), and
 * sync the host. Idempotent: a second call finds no lease and no link.
 */
export async function detachNetwork(
  containerId: string,
  endpoint: NetworkEndpoint,
  trace: Tracer,
  ops?: Partial<HostOps>,
): Promise<void> {
  const host = hostOps(trace, ops);
  const network = await readNetwork(host.dir, endpoint.networkId);
  if (network) {
    await release(host.dir, network, containerId).catch(() => false);
    await removePortFile(host.dir, network, containerId);
  }
  host.helper.deleteLink(endpoint.hostIf);
  await syncHost(host);
}

/**
 * The crash sweep of the store `root`: drop the leases of its containers
 * not live (and those of stores that are gone), delete their veths' host
 * ends, and sync the host when anything was dropped. `live` is asked under
 * each network's lease lock: a `run` writes its state before it takes a
 * lease under that lock, so its lease is never seen without it. Returns
 * the dropped containers' IDs.
 */
export async function reconcileEndpoints(
  root: string,
  live: () => Promise<ReadonlySet<string>>,
  ops?: Partial<HostOps>,
): Promise<string[]> {
  const host = hostOps(() => {}, ops);
  const dropped: string[] = [];
  for (const network of await listNetworks(host.dir)) {
    const gone = await withLeaseLock(host.dir, network, async () =>
      reconcileLocked(host.dir, network, { root, live: await live() }),
    ).catch(() => [] as string[]); // removed meanwhile: nothing to sweep
    dropped.push(...gone);
  }
  if (dropped.length === 0) return dropped;
  for (const id of dropped) host.helper.deleteLink(hostVethName(id));
  await syncHost(host);
  return dropped;
}

/**
 * /etc/hosts with the container's own address line (its hostname, and its
 * name when that differs), replacing the line a previous run wrote: an
 * address is leased anew each time the container starts.
 */
export function hostsWithAddress(
  hosts: string,
  ip: string,
  hostname: string,
  name: string,
): string {
  const names = name && name !== hostname ? `${hostname} ${name}` : hostname;
  const kept = hosts
    .split("\n")
    .filter((l) => l.trim() !== "")
    .filter(
      (l) =>
        !/^\d+\.\d+\.\d+\.\d+\s/.test(l) || /^127\./.test(l) || !l.split(/\s+/).includes(hostname),
    );
  return `${[...kept, `${ip}\t${names}`].join("\n")}\n`;
}
