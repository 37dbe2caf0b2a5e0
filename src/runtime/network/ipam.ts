/**
 * Address management: one lease file per network,
 * <root>/networks/<id>/leases.json = { containerId: "172.30.0.2", … }.
 *
 * Every change reads the file, changes it in memory and writes it whole to
 * tmp/ before renaming it over the old one, all under the network's flock:
 * twenty `run`s at once queue on the lock and each sees the others'
 * leases, and a command killed mid-write leaves the old file, never half a
 * new one. The kernel drops a dead holder's flock, so a crash never wedges
 * the next command.
 *
 * A lease outlives a crashed container; `reconcile` (the crash sweep) drops
 * the leases of containers that no longer exist. Addresses are handed out
 * lowest free first, never the network address, the gateway or the
 * broadcast address, so a released address is the next one reused.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { MiniboxError } from "../../errors.js";
import { networkPaths, rootLayout } from "../../layout.js";
import { withLock } from "../../sys/lock.js";
import type { NetworkRecord } from "./networks.js";
import {
  broadcast,
  type Cidr,
  contains,
  formatIPv4,
  macFromIp,
  parseCidr,
  parseIPv4,
} from "./subnet.js";

/** Container ID → its address on the network. */
export type Leases = Record<string, string>;

/** What a container needs to configure its interface. */
export interface Lease {
  ip: string;
  prefix: number;
  gateway: string;
  mac: string;
}

/** Why `ip` cannot be handed out on this network; undefined when it can. */
function unusable(
  network: NetworkRecord,
  subnet: Cidr,
  ip: number,
  used: Set<number>,
): string | undefined {
  const text = formatIPv4(ip);
  if (!contains(subnet, ip)) return `no configured subnet contains the IP address ${text}`;
  if (ip === subnet.base || ip === broadcast(subnet)) {
    return `invalid address ${text}: it is the network or broadcast address of ${network.subnet}`;
  }
  if (ip === parseIPv4(network.gateway) || used.has(ip)) return `Address already in use: ${text}`;
  return undefined;
}

/** The lowest address nobody holds; undefined when the subnet is full. */
function lowestFree(network: NetworkRecord, subnet: Cidr, used: Set<number>): number | undefined {
  const last = broadcast(subnet);
  for (let ip = subnet.base + 1; ip < last; ip++) {
    if (unusable(network, subnet, ip, used) === undefined) return ip;
  }
  return undefined;
}

/**
 * The pure step of `allocate`: the leases after giving `containerId` an
 * address (the one it already has, the one requested, or the lowest free).
 */
export function allocateIn(
  leases: Leases,
  network: NetworkRecord,
  containerId: string,
  requestedIp?: string,
): { leases: Leases; ip: string } {
  const held = leases[containerId];
  if (held !== undefined && (requestedIp === undefined || requestedIp === held)) {
    return { leases, ip: held };
  }
  if (held !== undefined) {
    throw new MiniboxError(
      `container ${containerId} already has ${held} on network ${network.name}`,
    );
  }
  const subnet = parseCidr(network.subnet);
  const used = new Set(Object.values(leases).map((ip) => parseIPv4(ip) as number));
  let ip: number | undefined;
  if (requestedIp !== undefined) {
    ip = parseIPv4(requestedIp);
    if (ip === undefined) throw new MiniboxError(`invalid IPv4 address: ${requestedIp}`);
    const why = unusable(network, subnet, ip, used);
    if (why) throw new MiniboxError(why);
  } else {
    ip = lowestFree(network, subnet, used);
    if (ip === undefined) {
      throw new MiniboxError(
        `no available IPv4 addresses on this network's address pools: ${network.name} (${network.id})`,
      );
    }
  }
  return { leases: { ...leases, [containerId]: formatIPv4(ip) }, ip: formatIPv4(ip) };
}

/** The pure step of `release`. */
export function releaseIn(leases: Leases, containerId: string): Leases {
  const { [containerId]: _gone, ...rest } = leases;
  return rest;
}

/** The pure step of `reconcile`: keep only live containers' leases. */
export function reconcileIn(
  leases: Leases,
  live: ReadonlySet<string>,
): { leases: Leases; dropped: string[] } {
  const dropped = Object.keys(leases).filter((id) => !live.has(id));
  const kept = Object.fromEntries(Object.entries(leases).filter(([id]) => live.has(id)));
  return { leases: kept, dropped };
}

function leaseFile(root: string, network: NetworkRecord): string {
  return networkPaths(rootLayout(root).network(network.id)).leases;
}

/** Hold the network's lease lock; fails if the network was removed meanwhile. */
export async function withLeaseLock<T>(
  root: string,
  network: NetworkRecord,
  fn: () => Promise<T>,
): Promise<T> {
  await mkdir(rootLayout(root).locks, { recursive: true, mode: 0o700 });
  return withLock(rootLayout(root).lock(`network-${network.id}`), async () => {
    if (!existsSync(networkPaths(rootLayout(root).network(network.id)).record)) {
      throw new MiniboxError(`network ${network.name} not found`);
    }
    return fn();
  });
}

export async function readLeases(root: string, network: NetworkRecord): Promise<Leases> {
  let text: string;
  try {
    text = await readFile(leaseFile(root, network), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw err;
  }
  return JSON.parse(text) as Leases;
}

/** Whole file to tmp/, then rename(2) over the old one (same filesystem, so atomic). */
async function writeLeases(root: string, network: NetworkRecord, leases: Leases): Promise<void> {
  const tmpDir = rootLayout(root).tmp;
  await mkdir(tmpDir, { recursive: true, mode: 0o700 });
  const tmp = join(tmpDir, `leases-${network.id.slice(0, 12)}-${randomBytes(6).toString("hex")}`);
  await writeFile(tmp, `${JSON.stringify(leases, null, 2)}\n`);
  await rename(tmp, leaseFile(root, network));
}

/** Give the container an address on the network (its existing one if it has one). */
export async function allocate(
  root: string,
  network: NetworkRecord,
  containerId: string,
  requestedIp?: string,
): Promise<Lease> {
  const ip = await withLeaseLock(root, network, async () => {
    const before = await readLeases(root, network);
    const after = allocateIn(before, network, containerId, requestedIp);
    if (after.leases !== before) await writeLeases(root, network, after.leases);
    return after.ip;
  });
  return {
    ip,
    prefix: parseCidr(network.subnet).prefix,
    gateway: network.gateway,
    mac: macFromIp(ip),
  };
}

/** Free the container's address; false when it had none. */
export async function release(
  root: string,
  network: NetworkRecord,
  containerId: string,
): Promise<boolean> {
  return withLeaseLock(root, network, async () => {
    const leases = await readLeases(root, network);
    if (!(containerId in leases)) return false;
    await writeLeases(root, network, releaseIn(leases, containerId));
    return true;
  });
}

/** The crash sweep, for a caller already holding the lease lock: the dropped containers' IDs. */
export async function reconcileLocked(
  root: string,
  network: NetworkRecord,
  live: ReadonlySet<string>,
): Promise<string[]> {
  const result = reconcileIn(await readLeases(root, network), live);
  if (result.dropped.length > 0) await writeLeases(root, network, result.leases);
  return result.dropped;
}

/** Drop the leases of containers that no longer exist; returns their IDs. */
export async function reconcile(
  root: string,
  network: NetworkRecord,
  live: ReadonlySet<string>,
): Promise<string[]> {
  return withLeaseLock(root, network, () => reconcileLocked(root, network, live));
}
