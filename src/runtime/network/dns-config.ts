/**
 * A container's /etc/resolv.conf and /etc/hosts, and the flags that shape
 * them (--dns, --dns-search, --dns-option, --add-host), with Docker's rules
 * and messages (docker/cli opts/opts.go, opts/hosts.go; moby's
 * libnetwork sandbox_dns_unix.go). Pure: the caller reads the host's files.
 *
 * resolv.conf, by network:
 *   host      the host's file as is (same network namespace: every
 *             nameserver of the host is reachable), the flags applied
 *   bridge    the host's file with loopback nameservers left out (they are
 *   none      the container's own loopback, where nothing answers), or
 *             the --dns servers; Google's if none is left (Docker's fallback)
 *   resolver  (a user-defined network) `nameserver GATEWAY` only: the
 *             network's minibox-dns answers containers' names and forwards
 *             the rest to the host's nameservers. Docker writes 127.0.0.11
 *             and DNATs it, inside each container's namespace, to its
 *             resolver's socket there; minibox's resolver is one process in
 *             the host's namespace, and the gateway is the one address of
 *             the host that every container on the network reaches already
 *             (its default route), so no rule per container is needed.
 *             `options ndots:0` as Docker writes it (unless an ndots option
 *             is given): a single-label name is asked as is first, so
 *             `web` reaches the resolver before any search domain.
 */
import { isIP } from "node:net";
import { MiniboxError } from "../../errors.js";

/** --dns, --dns-search, --dns-option as given (inspect's HostConfig.Dns, DnsSearch, DnsOptions). */
export interface DnsFlags {
  servers: string[];
  search: string[];
  options: string[];
}

export const NO_DNS_FLAGS: DnsFlags = { servers: [], search: [], options: [] };

/** Docker's fallback when the host has no nameserver a container can reach. */
const FALLBACK = ["8.8.8.8", "8.8.4.4"];

/** The name --add-host takes in place of an address. */
export const HOST_GATEWAY = "host-gateway";

function invalidArgument(value: string, flag: string, why: string): MiniboxError {
  return new MiniboxError(
    `invalid argument ${JSON.stringify(value)} for "${flag}" flag: ${why}`,
    undefined,
    125,
  );
}

/** One --dns value: an IPv4 or IPv6 address. */
export function parseDnsServer(value: string): string {
  const ip = value.trim();
  if (isIP(ip) === 0) {
    throw invalidArgument(value, "--dns", `IP address is not correctly formatted: ${value}`);
  }
  return ip;
}

const isLoopback = (ip: string) => /^127\./.test(ip) || ip === "::1";

/**
 * Docker's warning for a loopback --dns server: in its own network
 * namespace the container's loopback is its own, where no resolver runs.
 */
export function loopbackDnsWarnings(servers: readonly string[], network: string): string[] {
  if (network === "host") return [];
  return servers
    .filter(isLoopback)
    .map((ip) => `WARNING: Localhost DNS setting (--dns=${ip}) may fail in containers.`);
}

/** Docker's domain rule: labels of letters, digits and inner hyphens; a trailing dot allowed. */
const DOMAIN =
  /^((?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*)\.?\s*$/;

/** One --dns-search value: a domain, or "." (no search domains at all). */
export function parseDnsSearch(value: string): string {
  const v = value.trim();
  if (v === ".") return v;
  const m = DOMAIN.exec(v);
  if (!/[a-zA-Z]/.test(v) || !m || (m[1] ?? "").length >= 255) {
    throw invalidArgument(value, "--dns-search", `${value} is not a valid domain`);
  }
  return m[1] as string;
}

/**
 * One --add-host value: NAME:IP (split at the first ':', so an IPv6
 * address needs no brackets) or NAME=IP; IP may be `host-gateway`.
 * Returns Docker's ExtraHosts form, "NAME:IP".
 */
export function parseAddHost(value: string): string {
  const sep = /[:=]/.exec(value);
  const name = sep ? value.slice(0, sep.index) : "";
  let ip = sep ? value.slice(sep.index + 1) : "";
  if (!sep || name === "") {
    throw invalidArgument(value, "--add-host", `bad format for add-host: ${JSON.stringify(value)}`);
  }
  if (/^\[.*\]$/.test(ip)) ip = ip.slice(1, -1);
  if (ip !== HOST_GATEWAY && isIP(ip) === 0) {
    throw invalidArgument(
      value,
      "--add-host",
      `invalid IP address in add-host: ${JSON.stringify(ip)}`,
    );
  }
  if (/\s/.test(name)) {
    throw invalidArgument(
      value,
      "--add-host",
      `invalid hostname in add-host: ${JSON.stringify(name)}`,
    );
  }
  return `${name}:${ip}`;
}

/** "NAME:IP" → its parts (the name ends at the first ':'). */
export function splitExtraHost(entry: string): { name: string; ip: string } {
  const i = entry.indexOf(":");
  return { name: entry.slice(0, i), ip: entry.slice(i + 1) };
}

export type ResolvMode =
  | { kind: "host" }
  | { kind: "isolated" }
  | { kind: "resolver"; address: string };

/** The values of the host file's `KEY …` lines, in order (`#`/`;` comments skipped). */
function valuesOf(text: string, key: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const words = line
      .replace(/[#;].*/, "")
      .trim()
      .split(/\s+/);
    if (words[0] === key) out.push(...words.slice(1));
  }
  return out;
}

/** The nameservers the container's file lists. */
function nameservers(host: string, mode: ResolvMode, flags: DnsFlags): string[] {
  if (mode.kind === "resolver") return [mode.address];
  if (flags.servers.length > 0) return flags.servers;
  const fromHost = valuesOf(host, "nameserver");
  if (mode.kind === "host") return fromHost;
  const reachable = fromHost.filter((ip) => !isLoopback(ip));
  return reachable.length > 0 ? reachable : FALLBACK;
}

/**
 * The container's /etc/resolv.conf (pure): nameservers as the mode says,
 * the search domains and options given (else the host's; `--dns-search .`
 * means none).
 */
export function resolvConfText(host: string, mode: ResolvMode, flags: DnsFlags): string {
  const given = flags.servers.length + flags.search.length + flags.options.length > 0;
  if (mode.kind === "host" && !given) return host;
  const search = flags.search.length > 0 ? flags.search : valuesOf(host, "search");
  const options = flags.options.length > 0 ? [...flags.options] : valuesOf(host, "options");
  if (mode.kind === "resolver" && !options.some((o) => o.startsWith("ndots:"))) {
    options.push("ndots:0");
  }
  const lines = nameservers(host, mode, flags).map((ip) => `nameserver ${ip}`);
  const domains = search.filter((d) => d !== ".");
  if (domains.length > 0) lines.push(`search ${domains.join(" ")}`);
  if (options.length > 0) lines.push(`options ${options.join(" ")}`);
  return `${lines.join("\n")}\n`;
}

/** Docker's fixed part of /etc/hosts. */
const HOSTS_BASE = [
  "127.0.0.1\tlocalhost",
  "::1\tlocalhost ip6-localhost ip6-loopback",
  "fe00::0\tip6-localnet",
  "ff00::0\tip6-mcastprefix",
  "ff02::1\tip6-allnodes",
  "ff02::2\tip6-allrouters",
];

/**
 * The container's /etc/hosts before it has an address (pure): Docker's
 * fixed lines, the --add-host entries in order, and with --network host the
 * hostname on 127.0.1.1. `host-gateway` entries are written with
 * `hostGateway`, or left out when it is not known yet (a bridge network's
 * gateway: see withHostGateway).
 */
export function hostsText(
  hostname: string,
  network: string,
  extraHosts: readonly string[],
  hostGateway?: string,
): string {
  const lines = [...HOSTS_BASE];
  for (const entry of extraHosts) {
    const { name, ip } = splitExtraHost(entry);
    const address = ip === HOST_GATEWAY ? hostGateway : ip;
    if (address) lines.push(`${address}\t${name}`);
  }
  if (network === "host") lines.push(`127.0.1.1\t${hostname}`);
  return `${lines.join("\n")}\n`;
}

/**
 * /etc/hosts with the `host-gateway` entries of --add-host on `gateway`
 * (the container's network's, known once it is attached), replacing those
 * a previous start wrote: the gateway may differ from one start to the next.
 */
export function withHostGateway(hosts: string, extraHosts: readonly string[], gateway: string) {
  const names = extraHosts.map(splitExtraHost).filter((e) => e.ip === HOST_GATEWAY);
  if (names.length === 0) return hosts;
  const ours = new Set(names.map((e) => `\t${e.name}`));
  const kept = hosts
    .split("\n")
    .filter((l) => l !== "")
    .filter((l) => !ours.has(l.slice(l.indexOf("\t"))));
  return `${[...kept, ...names.map((e) => `${gateway}\t${e.name}`)].join("\n")}\n`;
}
