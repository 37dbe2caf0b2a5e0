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
 * Every change of the host side is made by host-sync.ts `syncHost`, under
 * one lock, from the lease files (and the published ports' files next to
 * them, publish.ts).
 */
import { randomBytes } from "node:crypto";
import { MiniboxError } from "../../errors.js";
import { hostVethName } from "../plan/network-steps.js";
import type { Tracer } from "../trace.js";
import { type HostOps, hostOps, networkRootOf, syncHost, withHostLock } from "./host-sync.js";
import {
  allocate,
  hasDeadLeases,
  type Lease,
  type Liveness,
  reconcileLocked,
  release,
  withLeaseLock,
} from "./ipam.js";
import {
  DEFAULT_NETWORK,
  ensureDefaultNetwork,
  getNetwork,
  listNetworks,
  type NetworkRecord,
  readNetwork,
} from "./networks.js";
import type { PortBinding, PortRequest } from "./ports.js";
import { removePortFile, reservePorts } from "./publish.js";

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
  live: () => Promise<Liveness["live"]>,
  ops?: Partial<HostOps>,
): Promise<string[]> {
  const host = hostOps(() => {}, ops);
  const dropped: string[] = [];
  for (const network of await listNetworks(host.dir)) {
    // Nothing to drop (the usual case): no lock, so no koffi (ipam.ts).
    const check = hasDeadLeases(host.dir, network, { root, live: await live() });
    if (!(await check.catch(() => true))) continue;
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
