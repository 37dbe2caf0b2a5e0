// Network records in a temporary root (plain files and flock, no root needed).
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { rootLayout } from "../../src/layout.js";
import { allocate, readLeases, release } from "../../src/runtime/network/ipam.js";
import {
  createNetwork,
  ensureDefaultNetwork,
  getNetwork,
  inspectNetwork,
  listNetworks,
  pruneNetworks,
  reconcileNetworks,
  removeNetwork,
  staleReason,
} from "../../src/runtime/network/networks.js";
import { parseCidr, parseRoutes } from "../../src/runtime/network/subnet.js";

const ROUTES = parseRoutes(
  "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n" +
    "wg0\t00001EAC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n",
);

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "minibox-networks-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("the default bridge network", () => {
  test("made once on the pool's first subnet, bridge minibox0, then the same record", async () => {
    const first = await ensureDefaultNetwork(root, []);
    expect(first.notice).toBeUndefined();
    expect(first.network).toMatchObject({
      name: "bridge",
      subnet: "172.30.0.0/16",
      gateway: "172.30.0.1",
      bridge: "minibox0",
      driver: "bridge",
      internal: false,
    });
    expect(first.network.id).toMatch(/^[0-9a-f]{64}$/);
    // Asked again, the same record (a route appearing later moves it only while idle: see staleReason).
    const again = await ensureDefaultNetwork(root, []);
    expect(again).toEqual({ network: first.network });
  });

  test("a routed subnet is passed over, and the notice says why", async () => {
    const { network, notice } = await ensureDefaultNetwork(root, ROUTES);
    expect(network.subnet).toBe("172.29.0.0/16");
    expect(notice).toBe(
      "the bridge network uses 172.29.0.0/16 (172.30.0.0/16 overlaps the host's route to 172.30.0.0/16 on wg0)",
    );
  });

  test("<root>/config.json's subnet, and a bad one refused", async () => {
    writeFileSync(rootLayout(root).config, JSON.stringify({ bridge: { subnet: "10.123.0.0/16" } }));
    expect((await ensureDefaultNetwork(root, [])).network.subnet).toBe("10.123.0.0/16");
    const other = mkdtempSync(join(tmpdir(), "minibox-networks-"));
    try {
      writeFileSync(
        rootLayout(other).config,
        JSON.stringify({ bridge: { subnet: "10.123.0.1/16" } }),
      );
      await expect(ensureDefaultNetwork(other, [])).rejects.toThrow("it should be 10.123.0.0/16");
      writeFileSync(rootLayout(other).config, "{");
      await expect(ensureDefaultNetwork(other, [])).rejects.toThrow('expected {"bridge"');
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  test("the default network cannot be removed", async () => {
    await ensureDefaultNetwork(root, []);
    await expect(removeNetwork(root, "bridge", { root, live: new Set() })).rejects.toThrow(
      "bridge is a pre-defined network and cannot be removed",
    );
  });
});

describe("user-defined networks", () => {
  test("create picks the next free subnet; list, get by name, ID and prefix", async () => {
    await ensureDefaultNetwork(root, []);
    const web = await createNetwork(root, { name: "web", routes: [], labels: { a: "b" } });
    expect(web).toMatchObject({
      subnet: "172.29.0.0/16",
      gateway: "172.29.0.1",
      labels: { a: "b" },
    });
    expect(web.bridge).toBe(`mbr-${web.id.slice(0, 11)}`);
    expect(web.bridge).toHaveLength(15); // IFNAMSIZ - 1
    expect(web.created).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    const db = await createNetwork(root, {
      name: "db",
      subnet: "10.50.0.0/24",
      gateway: "10.50.0.254",
      internal: true,
      routes: [],
    });
    expect(db).toMatchObject({ subnet: "10.50.0.0/24", gateway: "10.50.0.254", internal: true });
    expect((await listNetworks(root)).map((n) => n.name)).toEqual(["bridge", "web", "db"]);
    expect((await getNetwork(root, "web")).id).toBe(web.id);
    expect((await getNetwork(root, web.id)).name).toBe("web");
    expect((await getNetwork(root, web.id.slice(0, 5))).name).toBe("web");
    await expect(getNetwork(root, "nope")).rejects.toThrow("network nope not found");
    expect(inspectNetwork(db)).toMatchObject({
      Name: "db",
      Driver: "bridge",
      Internal: true,
      IPAM: { Config: [{ Subnet: "10.50.0.0/24", Gateway: "10.50.0.254" }] },
      Options: { "com.docker.network.bridge.name": db.bridge },
    });
  });

  test("Docker's validation messages", async () => {
    await createNetwork(root, { name: "web", subnet: "10.50.0.0/16", routes: [] });
    const bad: [Parameters<typeof createNetwork>[1], string][] = [
      [{ name: "web" }, "network with name web already exists"],
      [{ name: "host" }, "network with name host already exists"],
      [{ name: "-x" }, 'invalid network name "-x"'],
      [{ name: "o", subnet: "10.50.3.0/24" }, "Pool overlaps with other one on this address space"],
      [{ name: "o", subnet: "10.0.0.0/8" }, "Pool overlaps with other one on this address space"],
      [{ name: "o", subnet: "10.60.0.0" }, "invalid CIDR address: 10.60.0.0"],
      [
        { name: "o", subnet: "10.60.0.1/16" },
        "invalid subnet 10.60.0.1/16: it should be 10.60.0.0/16",
      ],
      [{ name: "o", subnet: "10.60.0.0/31" }, "too small"],
      [
        { name: "o", gateway: "10.60.0.1" },
        "every ip-range or gateway must have a corresponding subnet",
      ],
      [
        { name: "o", subnet: "10.60.0.0/16", gateway: "10.61.0.1" },
        "no matching subnet for gateway 10.61.0.1",
      ],
      [
        { name: "o", subnet: "10.60.0.0/16", gateway: "10.60.255.255" },
        "network or broadcast address",
      ],
      [{ name: "o", subnet: "10.60.0.0/16", gateway: "x" }, "invalid gateway address: x"],
    ];
    for (const [opts, message] of bad) {
      await expect(createNetwork(root, { routes: [], ...opts }), opts.name).rejects.toThrow(
        message,
      );
    }
    expect((await listNetworks(root)).map((n) => n.name)).toEqual(["web"]);
  });

  test("remove: refused with live containers, allowed once they are gone; nothing left", async () => {
    const web = await createNetwork(root, { name: "web", routes: [] });
    await allocate(root, web, "c1");
    await expect(removeNetwork(root, "web", { root, live: new Set(["c1"]) })).rejects.toThrow(
      `error while removing network: network web id ${web.id} has active endpoints`,
    );
    // c1 died without releasing: the sweep in remove drops its lease.
    expect((await removeNetwork(root, web.id.slice(0, 12), { root, live: new Set() })).name).toBe(
      "web",
    );
    expect(await listNetworks(root)).toEqual([]);
    expect(readdirSync(rootLayout(root).networks)).toEqual([]);
    expect(readdirSync(rootLayout(root).tmp)).toEqual([]);
    await expect(allocate(root, web, "c2")).rejects.toThrow("network web not found");
  });

  test("two networks with a common ID prefix: ambiguous", async () => {
    const a = await createNetwork(root, { name: "a", routes: [] });
    const b = await createNetwork(root, { name: "b", routes: [] });
    let common = 0;
    while (a.id[common] === b.id[common]) common++;
    if (common === 0) return; // no shared prefix this time: nothing ambiguous to ask for
    await expect(getNetwork(root, a.id.slice(0, common))).rejects.toThrow("is ambiguous");
  });
});

describe("the default network across stores", () => {
  test("a store whose config asks for another subnet gets it while the network is idle; not while in use", async () => {
    const first = await ensureDefaultNetwork(root, []);
    expect(first.network.subnet).toBe("172.30.0.0/16");
    const store = mkdtempSync(join(tmpdir(), "minibox-store-"));
    try {
      writeFileSync(
        rootLayout(store).config,
        JSON.stringify({ bridge: { subnet: "10.123.0.0/16" } }),
      );
      const lease = await allocate(root, first.network, "c1");
      const kept = await ensureDefaultNetwork(root, [], store);
      expect(kept.network.id).toBe(first.network.id);
      expect(kept.notice).toBe(
        `the bridge network keeps 172.30.0.0/16 while containers are on it (172.30.0.0/16 is not the 10.123.0.0/16 that ${rootLayout(store).config} asks for)`,
      );
      expect(lease.ip).toBe("172.30.0.2");
      await release(root, first.network, "c1");
      const remade = await ensureDefaultNetwork(root, [], store);
      expect(remade.network.subnet).toBe("10.123.0.0/16");
      expect(remade.notice).toBe(
        `the bridge network uses 10.123.0.0/16 (172.30.0.0/16 is not the 10.123.0.0/16 that ${rootLayout(store).config} asks for)`,
      );
      expect((await listNetworks(root)).map((n) => n.subnet)).toEqual(["10.123.0.0/16"]);
      expect((await ensureDefaultNetwork(root, [], store)).network.id).toBe(remade.network.id);
      // A store without a setting takes the network as it is.
      expect((await ensureDefaultNetwork(root, [])).network.id).toBe(remade.network.id);
    } finally {
      rmSync(store, { recursive: true, force: true });
    }
  });
});

describe("staleReason", () => {
  test("a route elsewhere or another configured subnet makes the default network stale; its own bridge's route does not", async () => {
    const { network } = await ensureDefaultNetwork(root, []);
    const route = (iface: string, cidr: string) => ({ iface, subnet: parseCidr(cidr) });
    expect(staleReason(network, undefined, [route("minibox0", "172.30.0.0/16")], "c.json")).toBe(
      undefined,
    );
    expect(staleReason(network, undefined, [route("eth9", "172.30.4.0/24")], "c.json")).toBe(
      "overlaps the host's route to 172.30.4.0/24 on eth9",
    );
    expect(staleReason(network, "10.1.0.0/16", [], "c.json")).toBe(
      "is not the 10.1.0.0/16 that c.json asks for",
    );
    expect(staleReason(network, "172.30.0.0/16", [], "c.json")).toBe(undefined);
  });

  test("an idle default network whose subnet the host now routes elsewhere is made again", async () => {
    const first = await ensureDefaultNetwork(root, []);
    const routed = [{ iface: "eth9", subnet: parseCidr(first.network.subnet) }];
    const again = await ensureDefaultNetwork(root, routed);
    expect(again.network.subnet).not.toBe(first.network.subnet);
    expect(again.notice).toMatch(
      /^the bridge network uses \S+ \(172\.30\.0\.0\/16 overlaps the host's route/,
    );
  });
});

describe("sweep and prune", () => {
  test("reconcileNetworks drops dead containers' leases on every network", async () => {
    const { network: bridge } = await ensureDefaultNetwork(root, []);
    const web = await createNetwork(root, { name: "web", routes: [] });
    await allocate(root, bridge, "live");
    await allocate(root, bridge, "dead1");
    await allocate(root, web, "dead2");
    expect(await reconcileNetworks(root, { root, live: new Set(["live"]) })).toEqual([
      { network: "bridge", dropped: ["dead1"] },
      { network: "web", dropped: ["dead2"] },
    ]);
    expect(await readLeases(root, bridge)).toEqual({ live: { ip: "172.30.0.2", root } });
    expect(await reconcileNetworks(root, { root, live: new Set(["live"]) })).toEqual([]);
  });

  test("pruneNetworks removes the unused user-defined networks, never the default", async () => {
    await ensureDefaultNetwork(root, []);
    const used = await createNetwork(root, { name: "used", routes: [] });
    await createNetwork(root, { name: "idle", routes: [] });
    await allocate(root, used, "c1");
    const removed = await pruneNetworks(root, { root, live: new Set(["c1"]) });
    expect(removed.map((n) => n.name)).toEqual(["idle"]);
    expect((await listNetworks(root)).map((n) => n.name)).toEqual(["bridge", "used"]);
  });
});
