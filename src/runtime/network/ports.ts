/**
 * Published ports: `-p` and `-P` as Docker parses them (moby's
 * go-connections nat.ParsePortSpec, same splitting, same ranges, same error
 * messages), and the three ways Docker shows them back — the `ps` PORTS
 * column (docker/cli's DisplayablePorts), `port C`'s lines and inspect's
 * NetworkSettings.Ports.
 *
 * A request keeps an empty hostPort for "any free port" and may keep a host
 * port *range* ("8000-8002" for one container port: Docker then picks the
 * first free port in it); the wiring turns requests into Bindings once the
 * host ports are chosen.
 */
import { MiniboxError } from "../../errors.js";
import type { PublishedPort } from "./firewall.js";
import { parseIPv4 } from "./subnet.js";

export type Proto = "tcp" | "udp";

/** One container port to publish, as asked for. */
export interface PortRequest {
  containerPort: number;
  proto: Proto;
  /** "" = every interface (Docker's default). IPv6 without brackets. */
  hostIp: string;
  /** "" = any free port; "N"; or "N-M" = the first free port in that range. */
  hostPort: string;
}

/** A published port once its host port is chosen (what ps, port and inspect show). */
export interface PortBinding {
  containerPort: number;
  proto: Proto;
  hostIp: string;
  hostPort: number;
}

/** nat's splitParts: the container port is last, the host port before it, the rest is the IP. */
function splitParts(raw: string): [string, string, string] {
  const parts = raw.split(":");
  const n = parts.length;
  if (n === 1) return ["", "", parts[0]];
  if (n === 2) return ["", parts[0], parts[1]];
  return [parts.slice(0, n - 2).join(":"), parts[n - 2], parts[n - 1]];
}

/** "80" or "80-82" → [start, end]; undefined when not a port or a rising range. */
export function parsePortRange(text: string): [number, number] | undefined {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  if (start > 65535 || end > 65535 || end < start) return undefined;
  return [start, end];
}

/** A host IP: "" , an IPv4 address or an IPv6 one (brackets stripped, as nat does). */
function parseHostIp(ip: string): string {
  let host = ip;
  if (host.startsWith("[")) {
    if (!host.endsWith("]"))
      throw new MiniboxError(`invalid IP address ${ip}: missing ']' in address`);
    host = host.slice(1, -1);
  }
  if (host !== "" && parseIPv4(host) === undefined && !isIPv6(host)) {
    throw new MiniboxError(`invalid IP address: ${host}`);
  }
  return host;
}

/** Good enough for a host address: hex groups and colons, at most one "::". */
function isIPv6(text: string): boolean {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || !text.includes(":")) return false;
  const doubles = text.split("::").length - 1;
  const groups = text.split(":").filter((g) => g !== "");
  return (
    doubles <= 1 && groups.length <= 8 && groups.every((g) => g.length <= 4 || g.includes("."))
  );
}

function parseProto(text: string): Proto {
  const proto = text.toLowerCase();
  if (proto === "tcp" || proto === "udp") return proto;
  if (proto === "sctp") throw new MiniboxError("publishing sctp ports is not supported");
  throw new MiniboxError(`invalid proto: ${proto}`);
}

/** One `-p` value → one request per container port (a range gives several). */
export function parsePortSpec(raw: string): PortRequest[] {
  const [ipPart, hostPort, last] = splitParts(raw);
  const slash = last.indexOf("/");
  const containerText = slash < 0 ? last : last.slice(0, slash);
  if (containerText === "") throw new MiniboxError(`no port specified: ${raw}<empty>`);
  const proto = parseProto(slash < 0 || slash === last.length - 1 ? "tcp" : last.slice(slash + 1));
  const hostIp = parseHostIp(ipPart);
  const container = parsePortRange(containerText);
  if (!container) throw new MiniboxError(`invalid containerPort: ${containerText}`);
  const [start, end] = container;
  let host: [number, number] | undefined;
  if (hostPort !== "") {
    host = parsePortRange(hostPort);
    if (!host) throw new MiniboxError(`invalid hostPort: ${hostPort}`);
    // A host range with a single container port is the range to pick a free port from.
    if (end - start !== host[1] - host[0] && end !== start) {
      throw new MiniboxError(
        `invalid ranges specified for container and host Ports: ${containerText} and ${hostPort}`,
      );
    }
  }
  return Array.from({ length: end - start + 1 }, (_, i) => ({
    containerPort: start + i,
    proto,
    hostIp,
    hostPort: hostPortText(host, i, start === end),
  }));
}

function hostPortText(host: [number, number] | undefined, i: number, single: boolean): string {
  if (!host) return "";
  if (single && host[0] !== host[1]) return `${host[0]}-${host[1]}`;
  return String(host[0] + i);
}

/** Every `-p` of a command line, in order. */
export function parsePortSpecs(raws: readonly string[]): PortRequest[] {
  return raws.flatMap(parsePortSpec);
}

/**
 * `-P`: every port the image exposes ("80/tcp", "53/udp", "8000-8001/tcp"
 * as keys of its config's ExposedPorts), published on every interface to a
 * free host port — except those an explicit `-p` already publishes.
 */
export function publishAllRequests(
  exposed: Record<string, unknown> | undefined,
  explicit: readonly PortRequest[] = [],
): PortRequest[] {
  const have = new Set(explicit.map((r) => portKey(r.containerPort, r.proto)));
  const out: PortRequest[] = [];
  for (const key of Object.keys(exposed ?? {})) {
    const [range, protoText = "tcp"] = key.split("/");
    const ports = parsePortRange(range);
    if (!ports) throw new MiniboxError(`invalid exposed port in the image: ${key}`);
    const proto = parseProto(protoText);
    for (let p = ports[0]; p <= ports[1]; p++) {
      if (!have.has(portKey(p, proto)))
        out.push({ containerPort: p, proto, hostIp: "", hostPort: "" });
    }
  }
  return out;
}

/**
 * `--expose` values ("80", "53/udp", "8000-8010") → port keys, one per port of
 * a range, as Docker records them in Config.ExposedPorts. Exposing publishes
 * nothing by itself: -P picks these up like the image's EXPOSE.
 */
export function parseExposeSpecs(raws: readonly string[]): string[] {
  const keys: string[] = [];
  for (const raw of raws) {
    const [range = "", protoText = "tcp", extra] = raw.split("/");
    const ports = parsePortRange(range);
    if (!ports || extra !== undefined) {
      throw new MiniboxError(
        `invalid range format for --expose: ${raw}`,
        "use --expose PORT[-PORT][/tcp|udp], e.g. --expose 8080 or --expose 53/udp",
      );
    }
    const proto = parseProto(protoText);
    for (let p = ports[0]; p <= ports[1]; p++) keys.push(portKey(p, proto));
  }
  return keys;
}

/** "8080/tcp": the key Docker indexes ports by. */
export function portKey(port: number, proto: Proto): string {
  return `${port}/${proto}`;
}

/** Go's net.JoinHostPort: brackets around an IPv6 host. */
export function joinHostPort(host: string, port: number | string): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The address Docker reports for a binding on every interface. */
function shownIp(ip: string): string {
  return ip === "" ? "0.0.0.0" : ip;
}

/** One row of Docker's port summary: a published binding, or an exposed port without one. */
export interface PortSummary {
  privatePort: number;
  proto: Proto;
  /** Absent for a port that is only exposed. */
  ip?: string;
  publicPort?: number;
}

/** The summaries `ps` shows: each binding, and each exposed port nothing publishes. */
export function portSummaries(
  bindings: readonly PortBinding[],
  exposed: readonly string[] = [],
): PortSummary[] {
  const published = new Set(bindings.map((b) => portKey(b.containerPort, b.proto)));
  const rows: PortSummary[] = bindings.map((b) => ({
    privatePort: b.containerPort,
    proto: b.proto,
    ip: shownIp(b.hostIp),
    publicPort: b.hostPort,
  }));
  for (const key of exposed) {
    const [range, proto = "tcp"] = key.split("/");
    const ports = parsePortRange(range);
    if (!ports || (proto !== "tcp" && proto !== "udp")) continue;
    for (let p = ports[0]; p <= ports[1]; p++) {
      if (!published.has(portKey(p, proto))) rows.push({ privatePort: p, proto });
    }
  }
  return rows;
}

/** IPv4 before IPv6, IPv4 by value (as Go's netip.Addr.Less orders them). */
function compareIp(a = "", b = ""): number {
  const [va, vb] = [parseIPv4(a), parseIPv4(b)];
  if (va !== undefined && vb !== undefined) return va - vb;
  if (va !== undefined) return -1;
  if (vb !== undefined) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function comparePorts(a: PortSummary, b: PortSummary): number {
  if (a.privatePort !== b.privatePort) return a.privatePort - b.privatePort;
  if ((a.ip ?? "") !== (b.ip ?? "")) return compareIp(a.ip, b.ip);
  if ((a.publicPort ?? 0) !== (b.publicPort ?? 0)) return (a.publicPort ?? 0) - (b.publicPort ?? 0);
  return a.proto < b.proto ? -1 : a.proto > b.proto ? 1 : 0;
}

/**
 * The `ps` PORTS column, as docker/cli's DisplayablePorts writes it:
 * "127.0.0.1:9090->8080/tcp, 0.0.0.0:32768->80/tcp, 9000/udp". Consecutive
 * ports are collapsed where the host port equals the container port
 * ("0.0.0.0:8000-8002->8000-8002/tcp") and for exposed-only ports
 * ("8000-8002/tcp"); a binding to another host port is always listed on
 * its own ("0.0.0.0:8000->80/tcp, 0.0.0.0:8001->81/tcp"), after the groups.
 */
export function displayPorts(summaries: readonly PortSummary[]): string {
  const groups = new Map<string, { first: number; last: number }>();
  const result: string[] = [];
  const mappings: string[] = [];
  for (const p of [...summaries].sort(comparePorts)) {
    let key: string = p.proto;
    if (p.ip !== undefined) {
      if (p.publicPort !== p.privatePort) {
        mappings.push(`${joinHostPort(p.ip, p.publicPort ?? 0)}->${p.privatePort}/${p.proto}`);
        continue;
      }
      key = `${p.ip}/${p.proto}`;
    }
    const group = groups.get(key);
    if (group && p.privatePort === group.last + 1) {
      group.last = p.privatePort;
      continue;
    }
    // A gap ends the group: it is written now and a new one starts (the map keeps first-seen order).
    if (group) result.push(formGroup(key, group.first, group.last));
    groups.set(key, { first: p.privatePort, last: p.privatePort });
  }
  for (const [key, g] of groups) result.push(formGroup(key, g.first, g.last));
  return [...result, ...mappings].join(", ");
}

function formGroup(key: string, first: number, last: number): string {
  const slash = key.lastIndexOf("/");
  const ip = slash < 0 ? "" : key.slice(0, slash);
  const proto = key.slice(slash + 1);
  const range = first === last ? String(first) : `${first}-${last}`;
  return ip === "" ? `${range}/${proto}` : `${joinHostPort(ip, range)}->${range}/${proto}`;
}

function compareBindings(a: PortBinding, b: PortBinding): number {
  if (a.containerPort !== b.containerPort) return a.containerPort - b.containerPort;
  if (a.proto !== b.proto) return a.proto < b.proto ? -1 : 1;
  return compareIp(shownIp(a.hostIp), shownIp(b.hostIp)) || a.hostPort - b.hostPort;
}

/**
 * `port C`: "8080/tcp -> 127.0.0.1:9090", one line per binding. With
 * `which` ("8080" or "8080/udp") only that port's host addresses, bare —
 * and an error naming the container when nothing publishes it.
 */
export function portLines(
  bindings: readonly PortBinding[],
  container: string,
  which?: string,
): string[] {
  const sorted = [...bindings].sort(compareBindings);
  if (which === undefined) {
    return sorted.map(
      (b) =>
        `${portKey(b.containerPort, b.proto)} -> ${joinHostPort(shownIp(b.hostIp), b.hostPort)}`,
    );
  }
  const [portText, proto = "tcp"] = which.split("/");
  const port = parsePortRange(portText);
  if (!port || port[0] !== port[1]) throw new MiniboxError(`invalid port (${which})`);
  const lines = sorted
    .filter((b) => b.containerPort === port[0] && b.proto === proto)
    .map((b) => joinHostPort(shownIp(b.hostIp), b.hostPort));
  if (lines.length === 0) {
    throw new MiniboxError(`no public port '${port[0]}/${proto}' published for ${container}`);
  }
  return lines;
}

export type PortMap = Record<string, { HostIp: string; HostPort: string }[] | null>;

/**
 * inspect's NetworkSettings.Ports: every exposed or published port, its
 * bindings, or null for a port that is only exposed.
 */
export function networkSettingsPorts(
  bindings: readonly PortBinding[],
  exposed: readonly string[] = [],
): PortMap {
  const out: PortMap = {};
  for (const key of exposed) out[key.includes("/") ? key : `${key}/tcp`] = null;
  for (const b of [...bindings].sort(compareBindings)) {
    const key = portKey(b.containerPort, b.proto);
    const list = out[key] ?? [];
    list.push({ HostIp: shownIp(b.hostIp), HostPort: String(b.hostPort) });
    out[key] = list;
  }
  return out;
}

/** inspect's HostConfig.PortBindings: the requests as given ("" for any IP, any port). */
export function hostConfigPortBindings(requests: readonly PortRequest[]): PortMap {
  const out: PortMap = {};
  for (const r of requests) {
    const key = portKey(r.containerPort, r.proto);
    out[key] = [...(out[key] ?? []), { HostIp: r.hostIp, HostPort: r.hostPort }];
  }
  return out;
}

// --- choosing host ports (the impure part, probing and locking, is in publish.ts) ---

/** /proc/sys/net/ipv4/ip_local_port_range ("32768\t60999") → [first, last]; Linux's default if unreadable. */
export function parseLocalPortRange(text: string | undefined): [number, number] {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text ?? "");
  const [first, last] = m ? [Number(m[1]), Number(m[2])] : [32768, 60999];
  return first >= 1 && first <= last && last <= 65535 ? [first, last] : [32768, 60999];
}

const everyInterface = (ip: string) => ip === "" || ip === "0.0.0.0";

/** Whether two bindings want the same socket: same protocol and port, and overlapping addresses. */
export function bindingsClash(a: PortBinding, b: PortBinding): boolean {
  if (a.proto !== b.proto || a.hostPort !== b.hostPort) return false;
  return everyInterface(a.hostIp) || everyInterface(b.hostIp) || a.hostIp === b.hostIp;
}

/** The host ports a request may get, in the order they are tried. */
export function candidatePorts(r: PortRequest, localRange: [number, number]): [number, number] {
  if (r.hostPort === "") return localRange;
  const range = parsePortRange(r.hostPort);
  if (!range) throw new MiniboxError(`invalid hostPort: ${r.hostPort}`);
  return range;
}

/** Docker's words when a port is held by another container (moby's portallocator). */
export function allocatedMessage(ip: string, port: number | string): string {
  return `Bind for ${joinHostPort(shownIp(ip), port)} failed: port is already allocated`;
}

/**
 * Give each request a host port: a fixed one as asked (unless another
 * container of this host has it: Docker's "port is already allocated"; a
 * program other than minibox is found when the executor binds it), else
 * the first port of its range (the host's ip_local_port_range for "") that
 * no container has and `isFree` says nothing else holds.
 */
export async function chooseBindings(
  requests: readonly PortRequest[],
  taken: readonly PortBinding[],
  localRange: [number, number],
  isFree: (b: PortBinding) => Promise<boolean>,
): Promise<PortBinding[]> {
  const chosen: PortBinding[] = [];
  const clashes = (b: PortBinding) => [...taken, ...chosen].some((t) => bindingsClash(t, b));
  for (const r of requests) {
    const [first, last] = candidatePorts(r, localRange);
    const base = { containerPort: r.containerPort, proto: r.proto, hostIp: r.hostIp };
    let found: PortBinding | undefined;
    for (let port = first; port <= last && !found; port++) {
      const b = { ...base, hostPort: port };
      const fixed = first === last && r.hostPort !== "";
      if (!clashes(b) && (fixed || (await isFree(b)))) found = b;
    }
    if (!found) {
      if (r.hostPort === "") throw new MiniboxError("all ports are allocated");
      throw new MiniboxError(allocatedMessage(r.hostIp, r.hostPort));
    }
    chosen.push(found);
  }
  return chosen;
}

/** A container's bindings as the firewall's DNAT rules (to its address on the network). */
export function publishedPorts(
  bindings: readonly PortBinding[],
  containerIp: string,
): PublishedPort[] {
  return bindings.map((b) => ({
    proto: b.proto,
    ...(everyInterface(b.hostIp) ? {} : { hostIp: b.hostIp }),
    hostPort: b.hostPort,
    containerIp,
    containerPort: b.containerPort,
  }));
}

/**
 * Whether the host's own loopback must reach some published port: one on
 * 127/8, or on every interface (Docker answers 127.0.0.1:P for `-p P:C`
 * too). That takes route_localnet on the bridge, and with it the guard.
 *
 * Why route_localnet and not a userland proxy in the monitor (Docker's
 * docker-proxy, the alternative): the kernel's DNAT costs no
 * process, no copy and no extra connection per request, and the container
 * sees the DNATed connection as every other published port's; the hole
 * route_localnet opens (CVE-2020-8558) is closed by the guard rule, which
 * exists exactly as long as the setting (endpoint.ts syncHost).
 */
export function needsRouteLocalnet(ports: readonly PublishedPort[]): boolean {
  return ports.some((p) => p.hostIp === undefined || p.hostIp.startsWith("127."));
}

/**
 * The one warning line for ports published without a HOST_IP: they are
 * open on every interface of the host, so to every machine that can reach
 * it (Docker's default; the talk's advice is to name the address).
 */
export function everyInterfaceWarning(bindings: readonly PortBinding[]): string | undefined {
  const open = [...bindings].filter((b) => everyInterface(b.hostIp)).sort(compareBindings);
  if (open.length === 0) return undefined;
  const first = open[0] as PortBinding;
  const list = open.map((b) => `${b.hostPort}->${portKey(b.containerPort, b.proto)}`).join(", ");
  return `warning: ${list} published on every interface of this host (0.0.0.0), open to other machines; to keep a port to this host, name the address: -p 127.0.0.1:${first.hostPort}:${first.containerPort}${first.proto === "udp" ? "/udp" : ""}`;
}

/** Refuse what minibox cannot publish, before anything is made: only IPv4 host addresses. */
export function checkPublishable(requests: readonly PortRequest[]): void {
  for (const r of requests) {
    if (r.hostIp !== "" && parseIPv4(r.hostIp) === undefined) {
      throw new MiniboxError(
        `publishing on ${r.hostIp}: only IPv4 host addresses are supported`,
        `use an IPv4 address, e.g. -p 127.0.0.1:${r.hostPort || r.containerPort}:${r.containerPort}`,
      );
    }
  }
}

/** What a container publishes when it starts: its -p requests, and with -P every other exposed port. */
export function launchRequests(c: {
  portRequests?: PortRequest[];
  publishAll?: boolean;
  exposedPorts?: string[];
}): PortRequest[] {
  const explicit = c.portRequests ?? [];
  if (!c.publishAll) return explicit;
  const exposed = Object.fromEntries((c.exposedPorts ?? []).map((k) => [k, {}]));
  return [...explicit, ...publishAllRequests(exposed, explicit)];
}

/** The `ps` PORTS column of a container: its bindings and bare exposed ports while it runs, else empty. */
export function psPorts(c: {
  running: boolean;
  ports?: PortBinding[];
  exposedPorts?: string[];
}): string {
  return c.running ? displayPorts(portSummaries(c.ports ?? [], c.exposedPorts)) : "";
}
