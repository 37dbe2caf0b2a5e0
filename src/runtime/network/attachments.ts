/**
 * A container's networks, as its state.json keeps them: the networks it
 * asks to be on (`requests`, kept whether it runs or not, so `start` and
 * `network connect` on a stopped container know them) and, while it runs,
 * one endpoint per network (its lease and veth). Pure functions over that
 * state, and inspect's NetworkSettings in Docker's shape.
 *
 * State files written before user-defined networks have `networkMode:
 * "bridge"` and at most one endpoint object rather than a list: both are
 * read here as the one-network case.
 */
import { MiniboxError } from "../../errors.js";
import type { EndpointRequest, NetworkEndpoint } from "./endpoint.js";
import { DEFAULT_NETWORK } from "./networks.js";

/** What of a container's state this module reads. */
export interface NetworkedState {
  id: string;
  name: string;
  networkMode?: string;
  networkRequests?: EndpointRequest[];
  network?: NetworkEndpoint | NetworkEndpoint[];
}

/** The networks the container is on, in order (the first is eth0 at start). */
export function requestsOf(state: NetworkedState): EndpointRequest[] {
  if (state.networkRequests) return state.networkRequests;
  return state.networkMode === DEFAULT_NETWORK ? [{ network: DEFAULT_NETWORK }] : [];
}

/** Its endpoints while it runs (none when it does not). */
export function endpointsOf(state: NetworkedState): NetworkEndpoint[] {
  const n = state.network;
  if (n === undefined) return [];
  return Array.isArray(n) ? n : [n];
}

/** The interface name of an endpoint (eth0 for one recorded before there were several). */
export function ifnameOf(e: NetworkEndpoint): string {
  return e.ifname ?? "eth0";
}

/** The lowest N such that ethN is free: the interface a connect adds. */
export function nextIfIndex(endpoints: readonly NetworkEndpoint[]): number {
  const used = new Set(endpoints.map(ifnameOf));
  let i = 0;
  while (used.has(`eth${i}`)) i++;
  return i;
}

/**
 * Docker's refusals for a request: aliases and a fixed address only on a
 * user-defined network.
 */
export function checkRequest(req: EndpointRequest): void {
  if (req.network !== DEFAULT_NETWORK) return;
  if (req.aliases && req.aliases.length > 0) {
    throw new MiniboxError(
      "network-scoped alias is supported only for containers in user defined networks",
    );
  }
  if (req.ip !== undefined) {
    throw new MiniboxError("user specified IP address is supported on user defined networks only");
  }
}

/** The names a container answers to on a user-defined network: its name, aliases, short ID. */
export function dnsNames(
  state: Pick<NetworkedState, "id" | "name">,
  req: EndpointRequest,
): string[] | null {
  if (req.network === DEFAULT_NETWORK) return null;
  return [state.name, ...(req.aliases ?? []), state.id.slice(0, 12)];
}

const NO_ADDRESS = {
  Gateway: "",
  IPAddress: "",
  IPPrefixLen: 0,
  IPv6Gateway: "",
  GlobalIPv6Address: "",
  GlobalIPv6PrefixLen: 0,
  MacAddress: "",
};

/** An endpoint's own address fields, Docker's names (empty when it does not run). */
function addressOf(e: NetworkEndpoint | undefined) {
  if (!e) return { ...NO_ADDRESS };
  return {
    ...NO_ADDRESS,
    Gateway: e.gateway,
    IPAddress: e.ip,
    IPPrefixLen: e.prefix,
    MacAddress: e.mac,
  };
}

/** One entry of NetworkSettings.Networks. */
export function endpointSettings(
  state: Pick<NetworkedState, "id" | "name">,
  req: EndpointRequest,
  e: NetworkEndpoint | undefined,
  networkId: string,
): Record<string, unknown> {
  const aliases = req.aliases && req.aliases.length > 0 ? req.aliases : null;
  return {
    IPAMConfig: req.ip ? { IPv4Address: req.ip } : null,
    Links: null,
    Aliases: aliases,
    NetworkID: e?.networkId ?? networkId,
    EndpointID: e?.endpointId ?? "",
    ...addressOf(e),
    DriverOpts: null,
    DNSNames: dnsNames(state, req),
  };
}

/**
 * inspect's NetworkSettings: one Networks entry per network the container
 * is on; the top-level address fields are the default bridge's, as in
 * Docker (empty on a user-defined network). `mode` "none" or "host" gives
 * that one entry. `networkIds` maps a network's name to its ID, for
 * entries of a stopped container.
 */
export function networkSettings(
  mode: string,
  state: NetworkedState,
  running: boolean,
  networkIds: Record<string, string> = {},
) {
  const endpoints = running ? endpointsOf(state) : [];
  const requests = requestsOf(state);
  const networks: Record<string, unknown> = {};
  for (const req of requests) {
    const e = endpoints.find((x) => x.network === req.network);
    networks[req.network] = endpointSettings(state, req, e, networkIds[req.network] ?? "");
  }
  if (requests.length === 0 && (mode === "none" || mode === "host")) {
    networks[mode] = { IPAMConfig: null, Links: null, Aliases: null, NetworkID: "", ...NO_ADDRESS };
  }
  const own = addressOf(endpoints.find((e) => e.network === DEFAULT_NETWORK));
  return { Bridge: "", SandboxID: "", SandboxKey: "", Ports: {}, ...own, Networks: networks };
}
