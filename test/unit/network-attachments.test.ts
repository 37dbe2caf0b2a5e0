// A container's networks in its state: requests, endpoints, old state files,
// Docker's refusals, and inspect's NetworkSettings.
import { describe, expect, it } from "vitest";
import {
  checkRequest,
  endpointsOf,
  networkSettings,
  nextIfIndex,
  requestsOf,
} from "../../src/runtime/network/attachments.js";
import { hostVethName, MAX_ENDPOINTS } from "../../src/runtime/plan/network-steps.js";

const ID = "c".repeat(64);
const bridgeEndpoint = {
  network: "bridge",
  networkId: "n".repeat(64),
  bridge: "minibox0",
  ip: "172.30.0.2",
  prefix: 16,
  gateway: "172.30.0.1",
  mac: "02:42:ac:1e:00:02",
  hostIf: "mbxcccccccccccc",
};
const webEndpoint = {
  ...bridgeEndpoint,
  network: "web",
  networkId: "w".repeat(64),
  bridge: "mbr-wwwwwwwwwww",
  ip: "10.89.0.2",
  prefix: 24,
  gateway: "10.89.0.1",
  mac: "02:42:0a:59:00:02",
  hostIf: "mb1cccccccccccc",
  ifname: "eth1",
  aliases: ["db"],
  endpointId: "e".repeat(64),
};

describe("requests and endpoints", () => {
  it("reads a state file written before several networks: one request, one endpoint", () => {
    const old = { id: ID, name: "web", networkMode: "bridge", network: bridgeEndpoint };
    expect(requestsOf(old)).toEqual([{ network: "bridge" }]);
    expect(endpointsOf(old)).toEqual([bridgeEndpoint]);
    expect(requestsOf({ id: ID, name: "x" })).toEqual([]);
    expect(endpointsOf({ id: ID, name: "x" })).toEqual([]);
  });

  it("the next interface is the lowest free ethN", () => {
    expect(nextIfIndex([])).toBe(0);
    expect(nextIfIndex([bridgeEndpoint])).toBe(1);
    expect(nextIfIndex([webEndpoint])).toBe(0);
    expect(nextIfIndex([bridgeEndpoint, webEndpoint])).toBe(2);
  });

  it("host ends: mbx for eth0, mb1… for the next ones, never longer than 15", () => {
    expect(hostVethName(ID, 0)).toBe("mbxcccccccccccc");
    expect(hostVethName(ID, 1)).toBe("mb1cccccccccccc");
    expect(hostVethName(ID, MAX_ENDPOINTS - 1)).toBe("mbwcccccccccccc");
    expect(() => hostVethName(ID, MAX_ENDPOINTS)).toThrow(/at most 33 networks/);
  });

  it("aliases and --ip only on user-defined networks (Docker's words)", () => {
    expect(() => checkRequest({ network: "bridge", aliases: ["a"] })).toThrow(
      "network-scoped alias is supported only for containers in user defined networks",
    );
    expect(() => checkRequest({ network: "bridge", ip: "172.30.0.9" })).toThrow(
      "user specified IP address is supported on user defined networks only",
    );
    expect(() => checkRequest({ network: "web", aliases: ["a"], ip: "10.89.0.9" })).not.toThrow();
  });
});

describe("NetworkSettings", () => {
  const state = {
    id: ID,
    name: "app",
    networkMode: "bridge",
    networkRequests: [{ network: "bridge" }, { network: "web", aliases: ["db"] }],
    network: [bridgeEndpoint, webEndpoint],
  };

  it("running on two networks: one entry each; the top level is the default bridge's", () => {
    const s = networkSettings("bridge", state, true);
    expect(Object.keys(s.Networks)).toEqual(["bridge", "web"]);
    expect(s).toMatchObject({ IPAddress: "172.30.0.2", Gateway: "172.30.0.1", IPPrefixLen: 16 });
    expect(s.Networks.web).toEqual({
      IPAMConfig: null,
      Links: null,
      Aliases: ["db"],
      NetworkID: "w".repeat(64),
      EndpointID: "e".repeat(64),
      Gateway: "10.89.0.1",
      IPAddress: "10.89.0.2",
      IPPrefixLen: 24,
      IPv6Gateway: "",
      GlobalIPv6Address: "",
      GlobalIPv6PrefixLen: 0,
      MacAddress: "02:42:0a:59:00:02",
      DriverOpts: null,
      DNSNames: ["app", "db", ID.slice(0, 12)],
    });
    expect(s.Networks.bridge).toMatchObject({ Aliases: null, DNSNames: null });
  });

  it("only on a user-defined network: the top-level address is empty, as Docker's", () => {
    const onWeb = { ...state, networkMode: "web", networkRequests: [{ network: "web" }] };
    const s = networkSettings("web", { ...onWeb, network: [webEndpoint] }, true);
    expect(s.IPAddress).toBe("");
    expect(Object.keys(s.Networks)).toEqual(["web"]);
  });

  it("stopped: the entries stay, with the network's ID and no address; --ip as IPAMConfig", () => {
    const stopped = { ...state, networkRequests: [{ network: "web", ip: "10.89.0.9" }] };
    const s = networkSettings("web", stopped, false, { web: "w".repeat(64) });
    expect(s.Networks.web).toMatchObject({
      NetworkID: "w".repeat(64),
      IPAddress: "",
      EndpointID: "",
      IPAMConfig: { IPv4Address: "10.89.0.9" },
    });
  });

  it("none and host: their one entry", () => {
    expect(Object.keys(networkSettings("none", { id: ID, name: "x" }, true).Networks)).toEqual([
      "none",
    ]);
    expect(Object.keys(networkSettings("host", { id: ID, name: "x" }, true).Networks)).toEqual([
      "host",
    ]);
  });
});
