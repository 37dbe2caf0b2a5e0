/**
 * Address management: one lease file per network,
 * networks/<id>/leases.json = { containerId: { ip: "172.30.0.2", root }, … }
 * under the host's network root (layout.ts: networks are the host's, shared
 * by every --root; `root` says which store the container is in).
 *
 * Every change reads the file, changes it in memory and writes it whole to
 * tmp/ before renaming it over the old one, all under the network's flock:
 * twenty `run`s at once queue on the lock and each sees the others'
 * leases, and a command killed mid-write leaves the old file, never half a
 * new one. The kernel drops a dead holder's flock, so a crash never wedges
 * the next command.
 *
 * A lease outlives a crashed container; `reconcile` (the crash sweep) drops
 * the leases of containers that no longer exist: those of its own store not
 * in the live set, and those of a store that is gone (a deleted --root).
 * Another store's live containers are that store's sweep's business. Addresses are handed out
 * lowest free first, never the network address, the gateway or the
 * broadcast address, so a released address is the next one reused.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
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

/** One container's address, and the store (--root) the container is in. */
export interface LeaseEntry {
  ip: string;
  root: string;
  /**
   * The names it answers to on a user-defined network, and its own
   * nameservers (`run --dns`): what the network's resolver serves (dns.ts).
   * Kept here, under the lease lock, so that the resolver's records are
   * made from one consistent file whatever runs at once.
   */
  dns?: DnsIdentity;
}

export interface DnsIdentity {
  name: string;
  aliases: string[];
  servers?: string[];
}

/** Container ID → its lease on the network. */
export type Leases = Record<string, LeaseEntry>;

/** Which containers a sweep may judge: those of `root`, of which `live` are alive. */
export interface Liveness {
  root: string;
  /** Asked once per lease of `root` (a Set, or a lookup that reads just that container). */
  live: { has(id: string): boolean };
  /** Whether a store still exists (a lease of a deleted store is dropped). */
  storeExists?: (root: string) => boolean;
}

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
  owner = "",
): { leases: Leases; ip: string } {
  const held = leases[containerId]?.ip;
  if (held !== undefined && (requestedIp === undefined || requestedIp === held)) {
    return { leases, ip: held };
  }
  if (held !== undefined) {
    throw new MiniboxError(
      `container ${containerId} already has ${held} on network ${network.name}`,
    );
  }
  const subnet = parseCidr(network.subnet);
  const used = new Set(Object.values(leases).map((l) => parseIPv4(l.ip) as number));
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
  const entry = { ip: formatIPv4(ip), root: owner };
  return { leases: { ...leases, [containerId]: entry }, ip: entry.ip };
}

/** The pure step of `release`. */
export function releaseIn(leases: Leases, containerId: string): Leases {
  const { [containerId]: _gone, ...rest } = leases;
  return rest;
}

/** The pure step of `reconcile`: drop the leases that `who` shows dead. */
export function reconcileIn(leases: Leases, who: Liveness): { leases: Leases; dropped: string[] } {
  const storeExists = who.storeExists ?? (() => true);
  const dead = ([id, l]: [string, LeaseEntry]) =>
    l.root === who.root ? !who.live.has(id) : !storeExists(l.root);
  const entries = Object.entries(leases);
  const dropped = entries.filter(dead).map(([id]) => id);
  const kept = Object.fromEntries(entries.filter((e) => !dead(e)));
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
    // Synchronously: a few hundred bytes per container, read by every sweep.
    text = readFileSync(leaseFile(root, network), "utf8");
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
  opts: { ip?: string; owner?: string; dns?: DnsIdentity } = {},
): Promise<Lease> {
  const ip = await withLeaseLock(root, network, async () => {
    const before = await readLeases(root, network);
    const after = allocateIn(before, network, containerId, opts.ip, opts.owner ?? root);
    const entry = after.leases[containerId];
    if (opts.dns && entry && !entry.dns)
      after.leases = { ...after.leases, [containerId]: { ...entry, dns: opts.dns } };
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

/**
 * Whether the crash sweep would drop anything, read without the lease lock.
 * Why: taking the lock costs `ps` loading koffi for flock(2) (~5 ms) for
 * every network, and almost every sweep finds nothing to drop. Safe: the
 * lease file is replaced by rename(2), so this reads one consistent version,
 * and a sweep that finds nothing in it is the sweep run at that moment
 * (a lease added after it is the next sweep's, as it would be anyway). When
 * something looks droppable, the caller sweeps under the lock, which checks
 * again.
 */
export async function hasDeadLeases(
  root: string,
  network: NetworkRecord,
  who: Liveness,
): Promise<boolean> {
  const leases = await readLeases(root, network);
  return reconcileIn(leases, { storeExists: existsSync, ...who }).dropped.length > 0;
}

/** The crash sweep, for a caller already holding the lease lock: the dropped containers' IDs. */
export async function reconcileLocked(
  root: string,
  network: NetworkRecord,
  who: Liveness,
): Promise<string[]> {
  const result = reconcileIn(await readLeases(root, network), { storeExists: existsSync, ...who });
  if (result.dropped.length > 0) await writeLeases(root, network, result.leases);
  return result.dropped;
}

/** Drop the leases of containers that no longer exist; returns their IDs. */
export async function reconcile(
  root: string,
  network: NetworkRecord,
  who: Liveness,
): Promise<string[]> {
  return withLeaseLock(root, network, () => reconcileLocked(root, network, who));
}
