// The lease transitions are pure (allocateIn, releaseIn, reconcileIn); the
// file-backed calls are exercised here too, in a temporary root, one
// process. Concurrency across processes is test/integration/ipam.test.ts.
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { networkPaths, rootLayout } from "../../src/layout.js";
import {
  allocate,
  allocateIn,
  hasDeadLeases,
  type Leases,
  readLeases,
  reconcile,
  reconcileIn,
  release,
  releaseIn,
} from "../../src/runtime/network/ipam.js";
import { createNetwork, type NetworkRecord } from "../../src/runtime/network/networks.js";
import { macFromIp } from "../../src/runtime/network/subnet.js";

function net(subnet: string, gateway: string): NetworkRecord {
  return {
    name: "n",
    id: "f".repeat(64),
    driver: "bridge",
    subnet,
    gateway,
    internal: false,
    labels: {},
    created: "2026-01-01T00:00:00.000Z",
    bridge: "mbr-ffffffffffff",
  };
}

describe("macFromIp", () => {
  test("02:42 followed by the four address bytes, as Docker derives it", () => {
    expect(macFromIp("172.17.0.2")).toBe("02:42:ac:11:00:02");
    expect(macFromIp("10.210.255.254")).toBe("02:42:0a:d2:ff:fe");
    expect(() => macFromIp("fd00::1")).toThrow(RangeError);
  });
});

/** A lease entry of the store "" (the pure tests' one store). */
const at = (ip: string, root = "") => ({ ip, root });
/** Container ID → address, for comparing. */
const ipsOf = (leases: Leases) =>
  Object.fromEntries(Object.entries(leases).map(([id, l]) => [id, l.ip]));

describe("lease transitions (pure)", () => {
  const n = net("10.9.0.0/29", "10.9.0.1");

  test("lowest free first, skipping the network address and the gateway", () => {
    let leases: Leases = {};
    const got: string[] = [];
    for (const id of ["a", "b", "c"]) {
      const r = allocateIn(leases, n, id);
      leases = r.leases;
      got.push(r.ip);
    }
    expect(got).toEqual(["10.9.0.2", "10.9.0.3", "10.9.0.4"]);
    expect(ipsOf(leases)).toEqual({ a: "10.9.0.2", b: "10.9.0.3", c: "10.9.0.4" });
  });

  test("a gateway elsewhere in the subnet is skipped where it is; .1 is then free", () => {
    const r = allocateIn({}, net("10.9.0.0/29", "10.9.0.6"), "a");
    expect(r.ip).toBe("10.9.0.1");
  });

  test("allocating twice for one container gives the same address, unchanged leases", () => {
    const first = allocateIn({}, n, "a");
    const again = allocateIn(first.leases, n, "a");
    expect(again.ip).toBe(first.ip);
    expect(again.leases).toBe(first.leases);
    expect(() => allocateIn(first.leases, n, "a", "10.9.0.5")).toThrow("already has 10.9.0.2");
  });

  test("a released address is the next one handed out", () => {
    const leases = { a: at("10.9.0.2"), b: at("10.9.0.3"), c: at("10.9.0.4") };
    const freed = releaseIn(leases, "b");
    expect(ipsOf(freed)).toEqual({ a: "10.9.0.2", c: "10.9.0.4" });
    expect(allocateIn(freed, n, "d").ip).toBe("10.9.0.3");
    expect(releaseIn(leases, "zz")).toEqual(leases);
  });

  test("full: Docker's message; broadcast never handed out", () => {
    let leases: Leases = {};
    for (const id of ["a", "b", "c", "d", "e"]) leases = allocateIn(leases, n, id).leases;
    expect(Object.values(ipsOf(leases))).not.toContain("10.9.0.7");
    expect(() => allocateIn(leases, n, "f")).toThrow(
      `no available IPv4 addresses on this network's address pools: n (${"f".repeat(64)})`,
    );
  });

  test("a requested address: taken, gateway, outside, network or broadcast are refused", () => {
    const leases = { a: at("10.9.0.2") };
    expect(allocateIn(leases, n, "b", "10.9.0.5").ip).toBe("10.9.0.5");
    expect(() => allocateIn(leases, n, "b", "10.9.0.2")).toThrow(
      "Address already in use: 10.9.0.2",
    );
    expect(() => allocateIn(leases, n, "b", "10.9.0.1")).toThrow(
      "Address already in use: 10.9.0.1",
    );
    expect(() => allocateIn(leases, n, "b", "10.9.1.2")).toThrow(
      "no configured subnet contains the IP address 10.9.1.2",
    );
    expect(() => allocateIn(leases, n, "b", "10.9.0.0")).toThrow("network or broadcast address");
    expect(() => allocateIn(leases, n, "b", "10.9.0.7")).toThrow("network or broadcast address");
    expect(() => allocateIn(leases, n, "b", "nope")).toThrow("invalid IPv4 address: nope");
  });

  test("reconcile keeps only live containers' leases", () => {
    const leases = { a: at("10.9.0.2"), b: at("10.9.0.3"), c: at("10.9.0.4") };
    const r = reconcileIn(leases, { root: "", live: new Set(["b"]) });
    expect(ipsOf(r.leases)).toEqual({ b: "10.9.0.3" });
    expect(r.dropped).toEqual(["a", "c"]);
  });

  test("reconcile judges only its own store's containers, and drops those of a store that is gone", () => {
    const leases = {
      a: at("10.9.0.2", "/s1"),
      b: at("10.9.0.3", "/s2"),
      c: at("10.9.0.4", "/gone"),
    };
    const storeExists = (root: string) => root !== "/gone";
    const r = reconcileIn(leases, { root: "/s1", live: new Set(), storeExists });
    expect(ipsOf(r.leases)).toEqual({ b: "10.9.0.3" });
    expect(r.dropped).toEqual(["a", "c"]);
  });

  test("the lease records the store it was taken for", () => {
    expect(allocateIn({}, n, "a", undefined, "/s1").leases).toEqual({ a: at("10.9.0.2", "/s1") });
  });
});

describe("lease file", () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "minibox-ipam-"));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  test("allocate, release, reconcile through the file; nothing left in tmp/", async () => {
    const n = await createNetwork(root, { name: "web", subnet: "10.44.0.0/24", routes: [] });
    const a = await allocate(root, n, "ca");
    expect(a).toEqual({
      ip: "10.44.0.2",
      prefix: 24,
      gateway: "10.44.0.1",
      mac: "02:42:0a:2c:00:02",
    });
    expect((await allocate(root, n, "cb")).ip).toBe("10.44.0.3");
    expect((await allocate(root, n, "ca")).ip).toBe("10.44.0.2");
    expect(await release(root, n, "ca")).toBe(true);
    expect(await release(root, n, "ca")).toBe(false);
    expect((await allocate(root, n, "cc")).ip).toBe("10.44.0.2");
    expect(await reconcile(root, n, { root, live: new Set(["cc"]) })).toEqual(["cb"]);
    expect(await readLeases(root, n)).toEqual({ cc: { ip: "10.44.0.2", root } });
    expect(readdirSync(rootLayout(root).tmp)).toEqual([]);
    expect(existsSync(networkPaths(rootLayout(root).network(n.id)).leases)).toBe(true);
  });

  test("hasDeadLeases: what the sweep would drop, read without the lock", async () => {
    const n = await createNetwork(root, { name: "web", subnet: "10.45.0.0/24", routes: [] });
    // No lease file yet: nothing to drop.
    expect(await hasDeadLeases(root, n, { root, live: new Set() })).toBe(false);
    await allocate(root, n, "ca");
    expect(await hasDeadLeases(root, n, { root, live: new Set(["ca"]) })).toBe(false);
    expect(await hasDeadLeases(root, n, { root, live: new Set() })).toBe(true);
    // Another store's lease: dead only when that store is gone.
    await allocate(root, n, "cb", { owner: join(root, "gone") });
    expect(await hasDeadLeases(root, n, { root, live: new Set(["ca"]) })).toBe(true);
  });

  test("a network removed meanwhile: allocate says so", async () => {
    const n = await createNetwork(root, { name: "web", routes: [] });
    rmSync(rootLayout(root).network(n.id), { recursive: true });
    await expect(allocate(root, n, "ca")).rejects.toThrow("network web not found");
  });
});
