/**
 * Who is on a network: the running containers that hold a lease on it,
 * with the names they answer to there. `network inspect` shows them
 * (Containers), `network rm` refuses while there are any, and the DNS
 * resolver answers for them.
 */
import { readFile } from "node:fs/promises";
import { containerPaths } from "../../layout.js";
import type { ContainerState } from "../state.js";
import { endpointsOf } from "./attachments.js";
import { type Leases, readLeases } from "./ipam.js";
import type { NetworkRecord } from "./networks.js";

export interface NetworkMember {
  /** The container's full ID. */
  id: string;
  name: string;
  /** Its --network-alias / connect --alias names on this network. */
  aliases: string[];
  /** "10.89.0.2" */
  ip: string;
  prefix: number;
  mac: string;
  endpointId: string;
}

async function stateOf(root: string, id: string): Promise<ContainerState | undefined> {
  try {
    return JSON.parse(await readFile(containerPaths(root, id).state, "utf8")) as ContainerState;
  } catch {
    return undefined; // removed meanwhile, or another root's
  }
}

/** A container's member record on `network`, from its state (pure). */
export function memberOf(state: ContainerState, network: NetworkRecord): NetworkMember | undefined {
  const e = endpointsOf(state).find((x) => x.networkId === network.id);
  if (!e) return undefined;
  return {
    id: state.id,
    name: state.name,
    aliases: e.aliases ?? [],
    ip: e.ip,
    prefix: e.prefix,
    mac: e.mac,
    endpointId: e.endpointId ?? "",
  };
}

/**
 * The containers on `network` now: every lease (under the network root
 * `root`) whose container's state — in the store the lease names, since
 * networks are shared by every store — records an endpoint on it, in
 * address order. A lease of a container that is gone is not a member (the
 * sweep drops it).
 */
export async function networkMembers(
  root: string,
  network: NetworkRecord,
): Promise<NetworkMember[]> {
  const leases: Leases = await readLeases(root, network).catch(() => ({}));
  const members: NetworkMember[] = [];
  for (const [id, lease] of Object.entries(leases)) {
    const state = await stateOf(lease.root, id);
    const member = state && state.status !== "exited" ? memberOf(state, network) : undefined;
    if (member) members.push(member);
  }
  const key = (ip: string) => ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
  return members.sort((a, b) => key(a.ip) - key(b.ip));
}
