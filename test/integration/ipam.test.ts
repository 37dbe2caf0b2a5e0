// IPAM across processes: twenty node processes allocate on one network at
// once (each its own flock, as twenty `minibox run`s), release and reuse,
// the crash sweep, and a lock holder killed by SIGKILL not wedging the next
// allocation. Plain files under a temporary root: no network device is made.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { rootLayout } from "../../src/layout.js";
import { readLeases, reconcile } from "../../src/runtime/network/ipam.js";
import { createNetwork, type NetworkRecord } from "../../src/runtime/network/networks.js";
import { contains, parseCidr, parseIPv4 } from "../../src/runtime/network/subnet.js";
import { REPO_ROOT } from "../support/minibox.js";

const WORKER = path.join(REPO_ROOT, "test", "support", "ipam-worker.mjs");

let root: string;
let network: NetworkRecord;
const started: ChildProcess[] = [];

function worker(...args: string[]): { child: ChildProcess; out: Promise<string> } {
  const child = spawn(process.execPath, [WORKER, root, network.id, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  started.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => {
    stdout += d;
  });
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  const out = new Promise<string>((resolve, reject) => {
    child.on("close", (code) =>
      code === 0 ? resolve(stdout.trim()) : reject(new Error(`worker ${args}: ${code} ${stderr}`)),
    );
  });
  return { child, out };
}

async function allocateIn(containerId: string): Promise<string> {
  return JSON.parse(await worker("allocate", containerId).out).ip;
}

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), "minibox-ipam-"));
  network = await createNetwork(root, { name: "mbtipam", subnet: "10.77.0.0/24", routes: [] });
});
afterEach(() => {
  // Only the workers this file started, by PID.
  for (const c of started.splice(0))
    if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** What the next allocation must get: the lowest host address nobody holds (gateway is .1). */
async function lowestFree(): Promise<string> {
  const used = new Set(Object.values(await readLeases(root, network)).map((l) => l.ip));
  for (let n = 2; ; n++) if (!used.has(`10.77.0.${n}`)) return `10.77.0.${n}`;
}

const ids = Array.from({ length: 20 }, (_, i) => `c${String(i).padStart(2, "0")}`);

describe("IPAM across processes", () => {
  test("20 concurrent allocations from 20 processes: 20 distinct addresses", async () => {
    const ips = await Promise.all(ids.map(allocateIn));
    expect(new Set(ips).size).toBe(20);
    const subnet = parseCidr(network.subnet);
    for (const ip of ips) {
      expect(contains(subnet, parseIPv4(ip) as number)).toBe(true);
      expect(ip).not.toBe(network.gateway);
    }
    // Lowest free first: together they hold exactly .2 to .21.
    const last = ips.map((ip) => Number(ip.split(".")[3])).sort((a, b) => a - b);
    expect(last).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
    const leases = await readLeases(root, network);
    expect(Object.keys(leases).sort()).toEqual(ids);
    expect(readdirSync(rootLayout(root).tmp)).toEqual([]);
  });

  test("released addresses are reused, lowest first", async () => {
    const leases = await readLeases(root, network);
    await Promise.all([worker("release", "c03").out, worker("release", "c07").out]);
    const [a, b] = await Promise.all([allocateIn("n1"), allocateIn("n2")]);
    expect([a, b].sort()).toEqual([leases.c03?.ip, leases.c07?.ip].sort());
    expect(await worker("release", "nobody").out).toBe("false");
  });

  test("reconcile drops the leases of containers that no longer exist", async () => {
    const live = new Set(["c00", "c01", "n1"]);
    const dropped = await reconcile(root, network, { root, live });
    expect(dropped.sort()).toEqual(
      ids
        .filter((id) => !live.has(id) && id !== "c03" && id !== "c07")
        .concat("n2")
        .sort(),
    );
    expect(Object.keys(await readLeases(root, network)).sort()).toEqual([...live].sort());
    const expected = await lowestFree();
    expect(await allocateIn("fresh")).toBe(expected);
  });

  test("a lock holder killed by SIGKILL does not block the next allocation", async () => {
    const expected = await lowestFree();
    const holder = worker("hold");
    await new Promise<void>((resolve) => holder.child.stdout?.once("data", () => resolve()));
    let done = false;
    const waiting = allocateIn("after-kill").finally(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 1000));
    expect(done).toBe(false); // it waits for the lock…
    holder.child.kill("SIGKILL"); // …which the kernel drops with its holder
    await expect(holder.out).rejects.toThrow();
    expect(await waiting).toBe(expected);
    expect(readdirSync(rootLayout(root).tmp)).toEqual([]);
  });
});
