/**
 * IPv4 subnets as numbers: parsing and printing CIDRs, the addresses a bridge
 * network reserves (network, gateway, broadcast), the host's routed subnets
 * read from /proc/net/route, and the choice of a free private /16.
 *
 * An address is a uint32 held in a JS number (never negative: every bit
 * operation ends with `>>> 0`), so comparisons and arithmetic stay plain.
 */
import { MiniboxError } from "../../errors.js";

export interface Cidr {
  /** The network address (host bits zero). */
  base: number;
  prefix: number;
}

/**
 * The subnets minibox tries, in order, for the default `bridge` and for
 * user-defined networks without --subnet. Docker hands out 172.17.0.0/16
 * upwards and podman 10.88.0.0/16 then 10.89.x.0/24 upwards, so minibox
 * counts *down* from 172.30.0.0/16: the three engines can live on one host
 * and meet last. After 172.20 it falls back to 10.210–10.219, clear of
 * both. Every candidate is still checked against the host's routes.
 */
export const DEFAULT_POOL: readonly string[] = [
  ...Array.from({ length: 11 }, (_, i) => `172.${30 - i}.0.0/16`),
  ...Array.from({ length: 10 }, (_, i) => `10.${210 + i}.0.0/16`),
];

/** Dotted quad → number; undefined when it is not one. */
export function parseIPv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    value = value * 256 + Number(part);
  }
  return value;
}

/** Docker's rule for a container's MAC: 02:42 (locally administered) then the four bytes of its IPv4 address. */
export function macFromIp(ip: string): string {
  const n = parseIPv4(ip);
  if (n === undefined) throw new RangeError(`not an IPv4 address: ${ip}`);
  const bytes = [0x02, 0x42, n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
}

export function formatIPv4(ip: number): string {
  return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join(".");
}

export function netmask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * "10.1.0.0/16" → Cidr. With `strict`, host bits must be zero (Docker's
 * `network create --subnet` says what it should have been); without, they are
 * masked off (a route or an address with its prefix).
 */
export function parseCidr(text: string, strict = true): Cidr {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text);
  const ip = m ? parseIPv4(m[1]) : undefined;
  const prefix = m ? Number(m[2]) : Number.NaN;
  if (ip === undefined || !(prefix >= 0 && prefix <= 32)) {
    if (m?.[1].includes(":")) throw new MiniboxError(`IPv6 subnets are not supported: ${text}`);
    throw new MiniboxError(`invalid CIDR address: ${text}`);
  }
  const base = (ip & netmask(prefix)) >>> 0;
  if (strict && base !== ip) {
    const should = formatCidr({ base, prefix });
    throw new MiniboxError(`invalid subnet ${text}: it should be ${should}`);
  }
  return { base, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIPv4(c.base)}/${c.prefix}`;
}

export function broadcast(c: Cidr): number {
  return (c.base | ~netmask(c.prefix)) >>> 0;
}

export function contains(c: Cidr, ip: number): boolean {
  return (ip & netmask(c.prefix)) >>> 0 === c.base;
}

/** Two subnets overlap exactly when one contains the other's network address. */
export function overlaps(a: Cidr, b: Cidr): boolean {
  return contains(a, b.base) || contains(b, a.base);
}

/** The n-th address of the subnet (0 = the network address itself). */
export function nthHost(c: Cidr, n: number): number {
  const ip = c.base + n;
  if (n < 0 || ip > broadcast(c)) {
    throw new RangeError(`${formatCidr(c)} has no host number ${n}`);
  }
  return ip;
}

/** Docker's default gateway: the first host address (.1 of a /16 or /24). */
export function defaultGateway(c: Cidr): number {
  return nthHost(c, 1);
}

export interface Route {
  iface: string;
  subnet: Cidr;
}

/**
 * The subnets the host routes, from /proc/net/route's text. Destination and
 * Mask are the kernel's 32-bit values printed in hex in host byte order,
 * which on every architecture minibox builds for is little-endian: "0002A8C0"
 * is 192.168.2.0. The default route (mask 0) covers everything and says
 * nothing about which private subnets are in use, so it is left out — as
 * Docker's overlap check leaves it out.
 */
export function parseRoutes(text: string): Route[] {
  const routes: Route[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const dest = swap32(Number.parseInt(f[1], 16));
    const mask = swap32(Number.parseInt(f[7], 16));
    const prefix = prefixOf(mask);
    if (prefix === undefined || prefix === 0) continue;
    routes.push({ iface: f[0], subnet: { base: (dest & mask) >>> 0, prefix } });
  }
  return routes;
}

function swap32(v: number): number {
  return (
    (((v & 255) << 24) | (((v >>> 8) & 255) << 16) | (((v >>> 16) & 255) << 8) | (v >>> 24)) >>> 0
  );
}

/** The prefix length of a contiguous mask; undefined for a non-contiguous one. */
function prefixOf(mask: number): number | undefined {
  for (let p = 0; p <= 32; p++) if (netmask(p) === mask) return p;
  return undefined;
}

export interface SubnetChoice {
  /** undefined when every candidate is taken. */
  subnet: Cidr | undefined;
  /** The candidates passed over, each with why (for a notice to the user). */
  skipped: { subnet: string; reason: string }[];
}

/**
 * The first candidate that overlaps neither a host route nor a subnet
 * already taken by another minibox network; undefined when none is free
 * (the caller says so with the reasons). Candidates are CIDR strings, so
 * a bad one from <root>/config.json fails here with Docker's message.
 */
export function pickSubnet(
  candidates: readonly string[],
  routes: readonly Route[],
  taken: readonly { name: string; subnet: Cidr }[] = [],
): SubnetChoice {
  const skipped: SubnetChoice["skipped"] = [];
  for (const text of candidates) {
    const subnet = parseCidr(text);
    const reason = conflictOf(subnet, routes, taken);
    if (reason === undefined) return { subnet, skipped };
    skipped.push({ subnet: text, reason });
  }
  return { subnet: undefined, skipped };
}

function conflictOf(
  subnet: Cidr,
  routes: readonly Route[],
  taken: readonly { name: string; subnet: Cidr }[],
): string | undefined {
  const net = taken.find((t) => overlaps(t.subnet, subnet));
  if (net) return `overlaps network ${net.name} (${formatCidr(net.subnet)})`;
  const route = routes.find((r) => overlaps(r.subnet, subnet));
  if (route) return `overlaps the host's route to ${formatCidr(route.subnet)} on ${route.iface}`;
  return undefined;
}
