/**
 * Network records: the default `bridge` and user-defined bridge networks,
 * each a directory <root>/networks/<id>/ holding network.json (and the
 * address leases, see ipam.ts).
 *
 * Crash safety as for volumes: a network is written whole in tmp/ and
 * renamed into networks/ (so a half-made one is never seen), and removed by
 * renaming it out to tmp/ first. One lock, "networks", serialises every
 * create and remove, so two racing `network create` calls cannot both take
 * a name or an overlapping subnet.
 *
 * The default network's subnet is picked once, the first time anything
 * asks for it, and then persisted: a host route appearing later must not
 * move running containers.
 */
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { MiniboxError } from "../../errors.js";
import { networkPaths, rootLayout } from "../../layout.js";
import { withLock } from "../../sys/lock.js";
import { type Liveness, readLeases, reconcileLocked, withLeaseLock } from "./ipam.js";
import {
  broadcast,
  type Cidr,
  contains,
  DEFAULT_POOL,
  defaultGateway,
  formatCidr,
  formatIPv4,
  overlaps,
  parseCidr,
  parseIPv4,
  parseRoutes,
  pickSubnet,
  type Route,
} from "./subnet.js";

/** Docker's name for the default network; `host` and `none` are the other predefined ones. */
export const DEFAULT_NETWORK = "bridge";
/** The default network's bridge device (Docker's is docker0, podman's podman0). */
export const DEFAULT_BRIDGE = "minibox0";
const PREDEFINED = [DEFAULT_NETWORK, "host", "none"];
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export interface NetworkRecord {
  name: string;
  /** 64 hex digits, like Docker's. */
  id: string;
  driver: "bridge";
  /** "172.30.0.0/16" */
  subnet: string;
  /** "172.30.0.1": the bridge's own address, the containers' default route. */
  gateway: string;
  /** --internal: no outbound NAT, no published ports. */
  internal: boolean;
  labels: Record<string, string>;
  /** ISO 8601. */
  created: string;
  /**
   * The Linux bridge device: minibox0, or mbr-<first 11 hex of the ID>. A
   * name is at most 15 characters (IFNAMSIZ 16 with the NUL): Docker's
   * "br-" + 12 fits, "mbr-" + 12 would not.
   */
  bridge: string;
}

export interface CreateOptions {
  name: string;
  subnet?: string;
  gateway?: string;
  internal?: boolean;
  labels?: Record<string, string>;
  /** The host's routes (tests pass their own); read from /proc/net/route when absent. */
  routes?: Route[];
}

function networkDir(root: string, id: string): string {
  return rootLayout(root).network(id);
}

async function withNetworksLock<T>(root: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(rootLayout(root).locks, { recursive: true, mode: 0o700 });
  return withLock(rootLayout(root).lock("networks"), fn);
}

/** The host's routes now (an unreadable /proc gives none: the pool's order still applies). */
export async function hostRoutes(): Promise<Route[]> {
  return parseRoutes(await readFile("/proc/net/route", "utf8").catch(() => ""));
}

// Read synchronously (here and in listNetworks): a record is ~300 bytes, and
// every sweep (`ps` included) lists the networks; thread-pool reads made
// `ps` start libuv's four threads (and join them at exit) for nothing else.
export async function readNetwork(root: string, id: string): Promise<NetworkRecord | undefined> {
  try {
    return JSON.parse(readFileSync(networkPaths(networkDir(root, id)).record, "utf8"));
  } catch {
    return undefined;
  }
}

/** Every network, oldest first (the order `network ls` shows them in is the caller's). */
export async function listNetworks(root: string): Promise<NetworkRecord[]> {
  let ids: string[];
  try {
    ids = readdirSync(rootLayout(root).networks);
  } catch {
    ids = [];
  }
  const records = await Promise.all(ids.map((id) => readNetwork(root, id)));
  return records
    .filter((r): r is NetworkRecord => r !== undefined)
    .sort((a, b) => a.created.localeCompare(b.created));
}

/**
 * A network by name, full ID or unique ID prefix — Docker's order: an
 * exact name wins over an ID that merely starts with it.
 */
export async function findNetwork(root: string, ref: string): Promise<NetworkRecord | undefined> {
  const all = await listNetworks(root);
  const exact = all.find((n) => n.name === ref) ?? all.find((n) => n.id === ref);
  if (exact) return exact;
  const byPrefix = /^[0-9a-f]+$/.test(ref) ? all.filter((n) => n.id.startsWith(ref)) : [];
  if (byPrefix.length > 1) {
    throw new MiniboxError(
      `network ${ref} is ambiguous (${byPrefix.length} matches found based on ID prefix)`,
    );
  }
  return byPrefix[0];
}

export async function getNetwork(root: string, ref: string): Promise<NetworkRecord> {
  const found = await findNetwork(root, ref);
  if (!found) throw new MiniboxError(`network ${ref} not found`);
  return found;
}

/** Write the record in tmp/ and rename its directory into networks/ (whole or not at all). */
async function storeNetwork(root: string, record: NetworkRecord): Promise<void> {
  const layout = rootLayout(root);
  await mkdir(layout.tmp, { recursive: true, mode: 0o700 });
  await mkdir(layout.networks, { recursive: true, mode: 0o700 });
  const staging = networkPaths(join(layout.tmp, `network-${record.id}`));
  await rm(staging.dir, { recursive: true, force: true });
  await mkdir(staging.dir, { mode: 0o700 });
  await writeFile(staging.record, `${JSON.stringify(record, null, 2)}\n`);
  await rename(staging.dir, networkDir(root, record.id));
}

/** A user-defined network's bridge device (see NetworkRecord.bridge). */
export function bridgeName(id: string): string {
  return `mbr-${id.slice(0, 11)}`;
}

/**
 * Now, to the microsecond, in Docker's RFC 3339 shape
 * ("2026-12-02T13:59:34.123456000Z"): networks made within one millisecond
 * still list in the order they were made.
 */
function createdNow(): string {
  const micros = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  const seconds = new Date(Math.floor(micros / 1e6) * 1000).toISOString().slice(0, 19);
  return `${seconds}.${String(micros % 1e6).padStart(6, "0")}000Z`;
}

function newId(): string {
  return randomBytes(32).toString("hex");
}

function takenSubnets(all: readonly NetworkRecord[]): { name: string; subnet: Cidr }[] {
  return all.map((n) => ({ name: n.name, subnet: parseCidr(n.subnet) }));
}

/** The subnet a new network gets: the one asked for (checked), or the first free one of the pool. */
function chooseSubnet(opts: CreateOptions, all: NetworkRecord[], routes: Route[]): Cidr {
  const taken = takenSubnets(all);
  if (opts.subnet === undefined) {
    const choice = pickSubnet(DEFAULT_POOL, routes, taken);
    if (choice.subnet) return choice.subnet;
    throw new MiniboxError(
      "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network",
      "pass --subnet",
    );
  }
  const subnet = parseCidr(opts.subnet);
  if (subnet.prefix > 30) {
    throw new MiniboxError(`invalid subnet ${opts.subnet}: too small for any container address`);
  }
  if (taken.some((t) => overlaps(t.subnet, subnet))) {
    throw new MiniboxError("Pool overlaps with other one on this address space");
  }
  return subnet;
}

/** --gateway, or the subnet's first host; Docker's messages for one that cannot be. */
function chooseGateway(opts: CreateOptions, subnet: Cidr): string {
  if (opts.gateway === undefined) return formatIPv4(defaultGateway(subnet));
  if (opts.subnet === undefined) {
    throw new MiniboxError("every ip-range or gateway must have a corresponding subnet");
  }
  const gw = parseIPv4(opts.gateway);
  if (gw === undefined) throw new MiniboxError(`invalid gateway address: ${opts.gateway}`);
  if (!contains(subnet, gw)) {
    throw new MiniboxError(`no matching subnet for gateway ${opts.gateway}`);
  }
  if (gw === subnet.base || gw === broadcast(subnet)) {
    throw new MiniboxError(
      `invalid gateway ${opts.gateway}: it is the network or broadcast address of ${formatCidr(subnet)}`,
    );
  }
  return opts.gateway;
}

function checkName(name: string, all: readonly NetworkRecord[]): void {
  if (!NAME_RE.test(name)) {
    throw new MiniboxError(
      `invalid network name "${name}"`,
      "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
    );
  }
  if (PREDEFINED.includes(name) || all.some((n) => n.name === name)) {
    throw new MiniboxError(`network with name ${name} already exists`);
  }
}

/** `network create`: a user-defined bridge network (Docker's validation, Docker's messages). */
export async function createNetwork(root: string, opts: CreateOptions): Promise<NetworkRecord> {
  const routes = opts.routes ?? (await hostRoutes());
  return withNetworksLock(root, async () => {
    const all = await listNetworks(root);
    checkName(opts.name, all);
    const subnet = chooseSubnet(opts, all, routes);
    const id = newId();
    const record: NetworkRecord = {
      name: opts.name,
      id,
      driver: "bridge",
      subnet: formatCidr(subnet),
      gateway: chooseGateway(opts, subnet),
      internal: opts.internal ?? false,
      labels: opts.labels ?? {},
      created: createdNow(),
      bridge: bridgeName(id),
    };
    await storeNetwork(root, record);
    return record;
  });
}

/** <root>/config.json's {"bridge": {"subnet": …}}, if the file says so. */
async function configuredBridgeSubnet(root: string): Promise<string | undefined> {
  const file = rootLayout(root).config;
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return undefined;
  }
  try {
    const subnet = JSON.parse(text)?.bridge?.subnet;
    if (subnet === undefined || typeof subnet === "string") return subnet;
  } catch {}
  throw new MiniboxError(`${file}: expected {"bridge": {"subnet": "CIDR"}}`);
}

export interface DefaultNetwork {
  network: NetworkRecord;
  /** Set when the network was just made on another subnet than the first choice: say why. */
  notice?: string;
}

/**
 * The default `bridge` network, made on first use: the subnet from the
 * store's config.json (`configRoot`) if set, else the pool's first; one
 * that the host already routes (or another minibox network uses) is passed
 * over, and the notice says which and why.
 *
 * Networks are the host's, shared by every store, and the host changes: a
 * default network whose subnet the host now routes elsewhere, or that a
 * store's config asks to be on another subnet, is made again — when no
 * container is on it; else the notice says it keeps its subnet until then.
 */
export async function ensureDefaultNetwork(
  root: string,
  routes?: Route[],
  configRoot = root,
): Promise<DefaultNetwork> {
  const configured = await configuredBridgeSubnet(configRoot);
  const hostRouted = routes ?? (await hostRoutes());
  const stale = (n: NetworkRecord) =>
    staleReason(n, configured, hostRouted, rootLayout(configRoot).config);
  const existing = await findNetwork(root, DEFAULT_NETWORK);
  if (existing?.name === DEFAULT_NETWORK && !stale(existing)) return { network: existing };
  return withNetworksLock(root, async () => {
    const made = (await listNetworks(root)).find((n) => n.name === DEFAULT_NETWORK);
    const why = made && stale(made);
    if (made && !why) return { network: made };
    if (made && !(await dropIfIdle(root, made))) {
      const notice = `the ${made.name} network keeps ${made.subnet} while containers are on it (${made.subnet} ${why})`;
      return { network: made, notice };
    }
    const moved = made && why ? [{ subnet: made.subnet, reason: why }] : [];
    return makeDefault(root, configured, hostRouted, moved);
  });
}

/**
 * Why the default network should be made again on another subnet (worded
 * to follow its subnet in the notice); undefined when not.
 */
export function staleReason(
  network: NetworkRecord,
  configured: string | undefined,
  routes: readonly Route[],
  configFile: string,
): string | undefined {
  if (otherSubnet(network, configured))
    return `is not the ${configured} that ${configFile} asks for`;
  const own = parseCidr(network.subnet);
  const elsewhere = routes.find((r) => r.iface !== network.bridge && overlaps(r.subnet, own));
  if (elsewhere) {
    return `overlaps the host's route to ${formatCidr(elsewhere.subnet)} on ${elsewhere.iface}`;
  }
  return undefined;
}

async function makeDefault(
  root: string,
  configured: string | undefined,
  hostRouted: Route[],
  moved: { subnet: string; reason: string }[],
): Promise<DefaultNetwork> {
  const candidates = configured ? [configured, ...DEFAULT_POOL] : DEFAULT_POOL;
  const choice = pickSubnet(candidates, hostRouted, takenSubnets(await listNetworks(root)));
  if (!choice.subnet) {
    throw new MiniboxError(
      "no free subnet for the default bridge network",
      `set one in ${rootLayout(root).config} as {"bridge": {"subnet": "CIDR"}}`,
    );
  }
  const network = defaultRecord(choice.subnet);
  await storeNetwork(root, network);
  const skipped = [...moved, ...choice.skipped.filter((s) => s.subnet !== moved[0]?.subnet)];
  return { network, notice: subnetNotice(network, skipped) };
}

/** Whether the configuration asks for another subnet than the network has. */
function otherSubnet(network: NetworkRecord, configured: string | undefined): boolean {
  if (configured === undefined) return false;
  try {
    return formatCidr(parseCidr(configured)) !== network.subnet;
  } catch {
    return false; // an invalid setting is reported where a network is made from it
  }
}

/** Remove a network no container is on (under its lease lock); false when one is. */
async function dropIfIdle(root: string, network: NetworkRecord): Promise<boolean> {
  return withLeaseLock(root, network, async () => {
    if (Object.keys(await readLeases(root, network)).length > 0) return false;
    await dropNetworkDir(root, network);
    return true;
  });
}

/** Rename the network's directory out of networks/ (atomic), then delete it. */
async function dropNetworkDir(root: string, network: NetworkRecord): Promise<void> {
  const doomed = join(rootLayout(root).tmp, `network-rm-${network.id}`);
  await mkdir(rootLayout(root).tmp, { recursive: true, mode: 0o700 });
  await rename(networkDir(root, network.id), doomed);
  await rm(doomed, { recursive: true, force: true });
}

function defaultRecord(subnet: Cidr): NetworkRecord {
  return {
    name: DEFAULT_NETWORK,
    id: newId(),
    driver: "bridge",
    subnet: formatCidr(subnet),
    gateway: formatIPv4(defaultGateway(subnet)),
    internal: false,
    labels: {},
    created: createdNow(),
    bridge: DEFAULT_BRIDGE,
  };
}

function subnetNotice(
  network: NetworkRecord,
  skipped: { subnet: string; reason: string }[],
): string | undefined {
  if (skipped.length === 0) return undefined;
  const why = skipped.map((s) => `${s.subnet} ${s.reason}`).join("; ");
  return `the ${network.name} network uses ${network.subnet} (${why})`;
}

/**
 * `network rm`: refused for the default network and for one that still
 * has containers. Leases of containers `who` shows dead are
 * dropped first (the crash sweep), so a container killed with its minibox
 * does not pin the network forever.
 */
export async function removeNetwork(
  root: string,
  ref: string,
  who: Liveness,
): Promise<NetworkRecord> {
  return withNetworksLock(root, async () => {
    const network = await getNetwork(root, ref);
    if (network.name === DEFAULT_NETWORK) {
      throw new MiniboxError(`${DEFAULT_NETWORK} is a pre-defined network and cannot be removed`);
    }
    await withLeaseLock(root, network, async () => {
      await reconcileLocked(root, network, who);
      if (Object.keys(await readLeases(root, network)).length > 0) {
        throw new MiniboxError(
          `error while removing network: network ${network.name} id ${network.id} has active endpoints`,
        );
      }
      await dropNetworkDir(root, network);
    });
    return network;
  });
}

/**
 * The crash sweep over every network: drop the leases of containers not in
 * `who` shows dead. Returns what was dropped, per network, for --debug.
 */
export async function reconcileNetworks(
  root: string,
  who: Liveness,
): Promise<{ network: string; dropped: string[] }[]> {
  const out: { network: string; dropped: string[] }[] = [];
  for (const network of await listNetworks(root)) {
    const dropped = await withLeaseLock(root, network, () =>
      reconcileLocked(root, network, who),
    ).catch(() => [] as string[]); // removed meanwhile: nothing to sweep
    if (dropped.length > 0) out.push({ network: network.name, dropped });
  }
  return out;
}

/**
 * `network prune`: every user-defined network no live container is on
 * (the default is never pruned, as in Docker). Returns the removed ones.
 */
export async function pruneNetworks(root: string, who: Liveness): Promise<NetworkRecord[]> {
  const removed: NetworkRecord[] = [];
  for (const network of await listNetworks(root)) {
    if (network.name === DEFAULT_NETWORK) continue;
    try {
      removed.push(await removeNetwork(root, network.id, who));
    } catch (err) {
      // In use (or removed meanwhile): prune leaves it, as Docker's does.
      if (!(err instanceof MiniboxError)) throw err;
    }
  }
  return removed;
}

/** `network inspect`'s shape (Docker's), without Containers — the caller adds those. */
export function inspectNetwork(n: NetworkRecord): Record<string, unknown> {
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created,
    Scope: "local",
    Driver: n.driver,
    EnableIPv6: false,
    IPAM: { Driver: "default", Options: {}, Config: [{ Subnet: n.subnet, Gateway: n.gateway }] },
    Internal: n.internal,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: "" },
    ConfigOnly: false,
    Options: { "com.docker.network.bridge.name": n.bridge },
    Labels: n.labels,
  };
}
