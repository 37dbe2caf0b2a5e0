import { describe, expect, test } from "vitest";
import {
  broadcast,
  contains,
  DEFAULT_POOL,
  defaultGateway,
  formatCidr,
  formatIPv4,
  nthHost,
  overlaps,
  parseCidr,
  parseIPv4,
  parseRoutes,
  pickSubnet,
} from "../../src/runtime/network/subnet.js";

const ip = (text: string) => parseIPv4(text) as number;

describe("IPv4 addresses and CIDRs", () => {
  test("parse and format round-trip, without sign trouble above 128.0.0.0", () => {
    for (const text of ["0.0.0.0", "10.0.0.1", "172.30.0.1", "255.255.255.255", "192.168.1.254"]) {
      expect(formatIPv4(ip(text))).toBe(text);
    }
    expect(ip("255.255.255.255")).toBe(0xffffffff);
  });

  test("bad addresses are undefined", () => {
    for (const bad of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "256.0.0.1",
      "a.b.c.d",
      "1.2.3.-1",
      "01234.1.1.1",
    ]) {
      expect(parseIPv4(bad), bad).toBeUndefined();
    }
  });

  test("a CIDR's network, gateway, broadcast and n-th host", () => {
    const c = parseCidr("172.30.0.0/16");
    expect(formatCidr(c)).toBe("172.30.0.0/16");
    expect(formatIPv4(defaultGateway(c))).toBe("172.30.0.1");
    expect(formatIPv4(broadcast(c))).toBe("172.30.255.255");
    expect(formatIPv4(nthHost(c, 258))).toBe("172.30.1.2");
    expect(() => nthHost(c, 65536)).toThrow(RangeError);
    expect(formatIPv4(broadcast(parseCidr("10.1.2.0/24")))).toBe("10.1.2.255");
    expect(formatIPv4(broadcast(parseCidr("0.0.0.0/0")))).toBe("255.255.255.255");
  });

  test("Docker's messages for a bad subnet", () => {
    expect(() => parseCidr("10.1.2.3/16")).toThrow(
      "invalid subnet 10.1.2.3/16: it should be 10.1.0.0/16",
    );
    expect(() => parseCidr("10.1.0/16")).toThrow("invalid CIDR address: 10.1.0/16");
    expect(() => parseCidr("10.1.0.0/33")).toThrow("invalid CIDR address: 10.1.0.0/33");
    expect(() => parseCidr("10.1.0.0")).toThrow("invalid CIDR address: 10.1.0.0");
    expect(() => parseCidr("fd00::/64")).toThrow("IPv6 subnets are not supported");
    expect(formatCidr(parseCidr("10.1.2.3/16", false))).toBe("10.1.0.0/16");
  });

  test("contains and overlaps", () => {
    const a = parseCidr("10.1.0.0/16");
    expect(contains(a, ip("10.1.255.255"))).toBe(true);
    expect(contains(a, ip("10.2.0.0"))).toBe(false);
    expect(overlaps(a, parseCidr("10.1.4.0/24"))).toBe(true);
    expect(overlaps(parseCidr("10.1.4.0/24"), a)).toBe(true);
    expect(overlaps(a, parseCidr("10.0.0.0/8"))).toBe(true);
    expect(overlaps(a, parseCidr("10.2.0.0/16"))).toBe(false);
    expect(overlaps(parseCidr("192.168.0.0/24"), parseCidr("192.168.1.0/24"))).toBe(false);
  });
});

const ROUTE_TEXT = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
wg0\t00001EAC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
`;

describe("/proc/net/route", () => {
  test("little-endian hex destinations and masks, the default route left out", () => {
    const routes = parseRoutes(ROUTE_TEXT).map((r) => `${r.iface} ${formatCidr(r.subnet)}`);
    expect(routes).toEqual(["eth0 192.0.2.0/24", "docker0 172.17.0.0/16", "wg0 172.30.0.0/16"]);
  });

  test("empty or garbage text gives no routes", () => {
    expect(parseRoutes("")).toEqual([]);
    expect(parseRoutes("Iface\tDestination\nnonsense")).toEqual([]);
  });
});

describe("pickSubnet", () => {
  test("the pool counts down from 172.30, then 10.210–10.219", () => {
    expect(DEFAULT_POOL.slice(0, 3)).toEqual(["172.30.0.0/16", "172.29.0.0/16", "172.28.0.0/16"]);
    expect(DEFAULT_POOL).toContain("172.20.0.0/16");
    expect(DEFAULT_POOL).not.toContain("172.17.0.0/16");
    expect(DEFAULT_POOL.at(-1)).toBe("10.219.0.0/16");
    for (const c of DEFAULT_POOL) parseCidr(c);
  });

  test("the first candidate when nothing is routed", () => {
    const choice = pickSubnet(DEFAULT_POOL, []);
    expect(formatCidr(choice.subnet ?? parseCidr("0.0.0.0/0"))).toBe("172.30.0.0/16");
    expect(choice.skipped).toEqual([]);
  });

  test("a routed or taken candidate is skipped, with the reason", () => {
    const routes = parseRoutes(ROUTE_TEXT);
    const taken = [{ name: "web", subnet: parseCidr("172.29.5.0/24") }];
    const choice = pickSubnet(DEFAULT_POOL, routes, taken);
    expect(choice.subnet && formatCidr(choice.subnet)).toBe("172.28.0.0/16");
    expect(choice.skipped).toEqual([
      { subnet: "172.30.0.0/16", reason: "overlaps the host's route to 172.30.0.0/16 on wg0" },
      { subnet: "172.29.0.0/16", reason: "overlaps network web (172.29.5.0/24)" },
    ]);
  });

  test("none free: subnet undefined, every reason given", () => {
    const routes = parseRoutes(ROUTE_TEXT);
    const choice = pickSubnet(["172.30.0.0/16", "192.0.2.0/25"], routes);
    expect(choice.subnet).toBeUndefined();
    expect(choice.skipped.map((s) => s.subnet)).toEqual(["172.30.0.0/16", "192.0.2.0/25"]);
  });

  test("a bad candidate fails with Docker's message", () => {
    expect(() => pickSubnet(["172.30.0.1/16"], [])).toThrow("it should be 172.30.0.0/16");
  });
});
