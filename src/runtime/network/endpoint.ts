/**
 * A container on a bridge network (`run --network bridge`): what `run` and
 * `start` do before the executor starts, and what is undone when the
 * container stops, is removed, or is found dead by the sweep.
 *
 *   attach   lease an address (ipam.ts), then under the host lock: the
 *            bridge up with its gateway address, ip_forward on (the host's
 *            value saved), the firewall table re-made for every network in use
 *   plan     [parent] veth (host end mbx<id12> on the bridge, peer eth0 in
 *            the init's netns), [child] eth0's MAC/address and the default route
 *   detach   release the lease, delete the host end if it is still there,
 *            then the same host sync: the firewall without the network when
 *            it has no container left, and with the last container of all
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
import { MiniboxError } from "../../errors.js";
import { rootLayout } from "../../layout.js";
import { withLock } from "../../sys/lock.js";
import { listNft } from "../../sys/nftables.js";
import { hostVethName } from "../plan/network-steps.js";
import type { Tracer } from "../trace.js";
import {
  applyFirewall,
  type FirewallDesc,
  hostForwardDrops,
  type PublishedPort,
  removeFirewall,
} from "./firewall.js";
import {
  allocate,
  type Leases,
  readLeases,
  reconcileLocked,
  release,
  withLeaseLock,
} from "./ipam.js";
import { type NetlinkHelper, netlinkHelper } from "./netlink.js";
import { ensureDefaultNetwork, listNetworks, type NetworkRecord, readNetwork } from "./networks.js";
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
  /** The host end of the container's veth (mbx<id12>). */
  hostIf: string;
}

/** What the host side is done with (tests give their own). */
export interface HostOps {
  helper: NetlinkHelper;
  /** libnftables; the real one when absent. */
  nft?: (cmd: string) => string;
  /** Where the sysctls are; /proc/sys when absent (unit tests give a directory of their own). */
  procSys?: string;
  /** libnftables' `list chains`, for the forward-drop check; the real one when absent. */
  listChains?: () => unknown[];
  trace: Tracer;
}

function hostOps(trace: Tracer, ops?: Partial<HostOps>): HostOps {
  return { ...ops, helper: ops?.helper ?? netlinkHelper(), trace };
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
    networks: inUse.map((n) => ({ name: n.name, bridge: n.bridge, subnet: n.subnet })),
    ports,
    routeLocalnet: needsRouteLocalnet(ports),
  };
}

/** Networks with at least one lease (with their leases), and those with none. */
async function networksByUse(root: string) {
  const inUse: NetworkRecord[] = [];
  const idle: NetworkRecord[] = [];
  const leases = new Map<string, Leases>();
  for (const n of await listNetworks(root)) {
    const held = await readLeases(root, n).catch(() => ({}));
    leases.set(n.id, held);
    (Object.keys(held).length > 0 ? inUse : idle).push(n);
  }
  return { inUse, idle, leases };
}

/** The one lock every change of the host side is made under (bridges, sysctls, firewall, ports). */
export function withHostLock<T>(root: string, fn: () => Promise<T>): Promise<T> {
  return withLock(rootLayout(root).lock("network-host"), fn);
}

/**
 * Make the host match the lease files: bridges of networks in use up,
 * forwarding on and the firewall for them and their containers' published
 * ports; idle networks' bridges deleted; with no network in use, no table
 * and ip_forward as the host had it.
 */
export async function syncHost(root: string, ops: HostOps): Promise<void> {
  const layout = rootLayout(root);
  await withHostLock(root, async () => {
    const { inUse, idle, leases } = await networksByUse(root);
    for (const n of idle) ops.helper.deleteLink(n.bridge);
    if (inUse.length === 0) {
      timed(
        ops.trace,
        () => "firewall: table inet minibox removed",
        () => removeFirewall(ops.nft),
      );
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
      ports.push(...(await networkPublishedPorts(root, n, leases.get(n.id) ?? {})));
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
  });
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
 * Put the container on the default bridge network: its lease, then the
 * host side. `notice` is called once, when the network was just made on
 * another subnet than the first choice.
 */
export async function attachDefaultNetwork(
  root: string,
  containerId: string,
  trace: Tracer,
  notice: (line: string) => void,
  ops?: Partial<HostOps>,
): Promise<NetworkEndpoint> {
  let t = performance.now();
  const made = await ensureDefaultNetwork(root);
  if (made.notice) notice(made.notice);
  const network = made.network;
  const lease = await allocate(root, network, containerId);
  trace(`network ${network.name}: lease ${lease.ip}/${lease.prefix}`, performance.now() - t);
  const endpoint: NetworkEndpoint = {
    network: network.name,
    networkId: network.id,
    bridge: network.bridge,
    ...lease,
    hostIf: hostVethName(containerId),
  };
  t = performance.now();
  try {
    await syncHost(root, hostOps(trace, ops));
  } catch (err) {
    await release(root, network, containerId).catch(() => false);
    throw err;
  }
  trace(`network ${network.name}: host side ready`, performance.now() - t);
  const drops = hostForwardDrops((ops?.listChains ?? (() => listNft("list chains")))());
  if (drops.length > 0) notice(forwardDropWarning(drops, network.subnet));
  return endpoint;
}

/**
 * -p/-P: choose the host ports of an attached container and record them
 * (under the host lock, so concurrent runs never pick the same one), then
 * sync the host so the DNAT rules include them. The executor holds the
 * ports (plan/port-steps.ts); a failure from here on is undone by
 * detachNetwork, which forgets the ports with the lease.
 */
export async function publishPorts(
  root: string,
  containerId: string,
  endpoint: NetworkEndpoint,
  requests: readonly PortRequest[],
  trace: Tracer,
  ops?: Partial<HostOps>,
): Promise<PortBinding[]> {
  if (requests.length === 0) return [];
  const t = performance.now();
  const network = await readNetwork(root, endpoint.networkId);
  if (!network) throw new MiniboxError(`network ${endpoint.network} not found`);
  const all = await listNetworks(root);
  const bindings = await withHostLock(root, () =>
    reservePorts(root, network, containerId, requests, all),
  );
  trace(`ports: ${bindings.length} host port(s) chosen`, performance.now() - t);
  await syncHost(root, hostOps(trace, ops));
  return bindings;
}

/**
 * A forward chain of another table with policy drop drops the containers'
 * outbound traffic whatever minibox's table accepts (see firewall.ts): say
 * so, and where the way through is.
 */
export function forwardDropWarning(chains: string[], subnet: string): string {
  return `warning: ${chains.join(", ")} drops forwarded packets (policy drop), so containers on ${subnet} cannot reach beyond this host; accept ${subnet} in that chain (Docker's DOCKER-USER chain is the place) or set its policy to accept`;
}

/**
 * Undo a container's attachment: release its lease, delete its veth's
 * host end if the kernel has not already (it goes with the netns), and
 * sync the host. Idempotent: a second call finds no lease and no link.
 */
export async function detachNetwork(
  root: string,
  containerId: string,
  endpoint: NetworkEndpoint,
  trace: Tracer,
  ops?: Partial<HostOps>,
): Promise<void> {
  const host = hostOps(trace, ops);
  const network = await readNetwork(root, endpoint.networkId);
  if (network) {
    await release(root, network, containerId).catch(() => false);
    await removePortFile(root, network, containerId);
  }
  host.helper.deleteLink(endpoint.hostIf);
  await syncHost(root, host);
}

/**
 * The crash sweep: drop the leases of containers not live, delete their
 * veths' host ends, and sync the host when anything was dropped. `live` is
 * asked under each network's lease lock: a `run` writes its state before
 * it takes a lease under that lock, so its lease is never seen without it.
 * Returns the dropped containers' IDs.
 */
export async function reconcileEndpoints(
  root: string,
  live: () => Promise<ReadonlySet<string>>,
  ops?: Partial<HostOps>,
): Promise<string[]> {
  const dropped: string[] = [];
  for (const network of await listNetworks(root)) {
    const gone = await withLeaseLock(root, network, async () =>
      reconcileLocked(root, network, await live()),
    ).catch(() => [] as string[]); // removed meanwhile: nothing to sweep
    dropped.push(...gone);
  }
  if (dropped.length === 0) return dropped;
  const host = hostOps(() => {}, ops);
  for (const id of dropped) host.helper.deleteLink(hostVethName(id));
  await syncHost(root, host);
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

/** inspect's NetworkSettings, in Docker's shape (empty values when not attached). */
export function networkSettings(mode: string, e: NetworkEndpoint | undefined) {
  const own = {
    Gateway: e?.gateway ?? "",
    IPAddress: e?.ip ?? "",
    IPPrefixLen: e?.prefix ?? 0,
    IPv6Gateway: "",
    GlobalIPv6Address: "",
    GlobalIPv6PrefixLen: 0,
    MacAddress: e?.mac ?? "",
  };
  const networks =
    mode === "bridge"
      ? {
          bridge: {
            IPAMConfig: null,
            Links: null,
            Aliases: null,
            NetworkID: e?.networkId ?? "",
            EndpointID: "",
            ...own,
            DriverOpts: null,
            DNSNames: null,
          },
        }
      : { [mode]: { IPAMConfig: null, Links: null, Aliases: null, NetworkID: "", ...own } };
  return { Bridge: "", SandboxID: "", SandboxKey: "", Ports: {}, ...own, Networks: networks };
}
