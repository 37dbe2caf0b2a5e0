/**
 * `network connect` and `network disconnect`: a container joins or leaves a
 * bridge network.
 *
 * On a running container the change is made at once: connect leases an
 * address, brings the host side up (endpoint.ts) and has minibox-net make
 * a veth into the container's network namespace (found through its init's
 * /proc/PID/ns/net) and configure it there, as eth1, eth2…; disconnect
 * deletes the veth (its peer goes with it) and releases the lease. On a
 * stopped container only its state changes, and the next start applies it.
 *
 * Everything happens under the container's lock, the one the exit hook
 * takes: an exit during a connect is recorded after it, and then releases
 * the new endpoint with the others.
 */
import { readFile } from "node:fs/promises";
import { MiniboxError } from "../../errors.js";
import { containerPaths } from "../../layout.js";
import { withLock } from "../../sys/lock.js";
import { lockOf } from "../lifecycle.js";
import type { ContainerState } from "../state.js";
import { writeState } from "../state.js";
import { NO_TRACE } from "../trace.js";
import { checkRequest, endpointsOf, nextIfIndex, requestsOf } from "./attachments.js";
import {
  attachNetwork,
  detachNetwork,
  type EndpointRequest,
  type NetworkEndpoint,
} from "./endpoint.js";
import { type HostOps, networkRootOf } from "./host-sync.js";
import { netlinkHelper } from "./netlink.js";
import {
  DEFAULT_NETWORK,
  ensureDefaultNetwork,
  getNetwork,
  type NetworkRecord,
} from "./networks.js";

const PRIVATE_MODE =
  "container cannot be connected to multiple networks with one of the networks in private (none) mode";

export interface ConnectOptions {
  aliases?: string[];
  ip?: string;
}

/** Who is being connected: its ID, and whether it runs (lifecycle's view of it). */
export interface ContainerRef {
  id: string;
  running: boolean;
}

/** The network by name or ID; "bridge" is made on first use; host and none cannot be joined. */
export async function networkFor(
  root: string,
  ref: string,
  ops?: Partial<HostOps>,
): Promise<NetworkRecord> {
  if (ref === "host") {
    throw new MiniboxError(
      "container cannot be disconnected from host network or connected to host network",
    );
  }
  if (ref === "none") throw new MiniboxError(PRIVATE_MODE);
  const net = networkRootOf(ops);
  if (ref === DEFAULT_NETWORK) return (await ensureDefaultNetwork(net, undefined, root)).network;
  return getNetwork(net, ref);
}

async function readState(root: string, id: string): Promise<ContainerState> {
  return JSON.parse(await readFile(containerPaths(root, id).state, "utf8")) as ContainerState;
}

/** Docker's refusals for a container that has no bridge networking of its own to extend. */
function checkConnectable(state: ContainerState, network: NetworkRecord): void {
  if (!state.networkMode) {
    throw new MiniboxError(
      PRIVATE_MODE,
      "a container run with --network none or host cannot join a network",
    );
  }
  if (requestsOf(state).some((r) => r.network === network.name)) {
    throw new MiniboxError(
      `endpoint with name ${state.name} already exists in network ${network.name}`,
    );
  }
}

/** `network connect`: the container is on the network from now (running) or from its next start. */
export async function connectContainer(
  root: string,
  c: ContainerRef,
  networkRef: string,
  opts: ConnectOptions,
  ops?: Partial<HostOps>,
): Promise<void> {
  const network = await networkFor(root, networkRef, ops);
  await withLock(lockOf(root, c.id), async () => {
    const state = await readState(root, c.id);
    checkConnectable(state, network);
    const req: EndpointRequest = { network: network.name, aliases: opts.aliases, ip: opts.ip };
    checkRequest(req);
    if (c.running && state.pid) {
      const endpoint = await connectRunning(root, state, network, req, ops);
      state.network = [...endpointsOf(state), endpoint];
    }
    state.networkRequests = [...requestsOf(state), req];
    await writeState(containerPaths(root, c.id), state);
  });
}

/** Lease and host side, then the veth into the running container; undone if that fails. */
async function connectRunning(
  root: string,
  state: ContainerState,
  network: NetworkRecord,
  req: EndpointRequest,
  ops?: Partial<HostOps>,
): Promise<NetworkEndpoint> {
  const index = nextIfIndex(endpointsOf(state));
  const how = {
    index,
    aliases: req.aliases,
    ip: req.ip,
    name: state.name,
    dns: state.dns?.servers,
  };
  const e = await attachNetwork(root, state.id, network, how, NO_TRACE, ops);
  const helper = ops?.helper ?? netlinkHelper();
  try {
    helper.attach({
      hostIf: e.hostIf,
      peerIf: e.ifname ?? `eth${index}`,
      pid: state.pid as number,
      bridge: e.bridge,
      mac: e.mac,
      cidr: `${e.ip}/${e.prefix}`,
      gateway: network.internal ? undefined : e.gateway,
    });
  } catch (err) {
    await detachNetwork(state.id, e, NO_TRACE, ops).catch(() => undefined);
    throw err;
  }
  return e;
}

/**
 * `network disconnect`: off the network now (running: its veth deleted,
 * its lease released) and at later starts. `force`: no error when it is
 * not on that network.
 */
export async function disconnectContainer(
  root: string,
  c: ContainerRef,
  networkRef: string,
  force: boolean,
  ops?: Partial<HostOps>,
): Promise<void> {
  const network = await networkFor(root, networkRef, ops);
  await withLock(lockOf(root, c.id), async () => {
    const state = await readState(root, c.id);
    const requests = requestsOf(state);
    const endpoints = endpointsOf(state);
    if (!requests.some((r) => r.network === network.name)) {
      if (force) return;
      throw new MiniboxError(`container ${c.id} is not connected to network ${network.name}`);
    }
    const endpoint = endpoints.find((e) => e.networkId === network.id);
    if (endpoint) await detachNetwork(state.id, endpoint, NO_TRACE, ops);
    state.networkRequests = requests.filter((r) => r.network !== network.name);
    if (state.network !== undefined) state.network = endpoints.filter((e) => e !== endpoint);
    await writeState(containerPaths(root, c.id), state);
  });
}
