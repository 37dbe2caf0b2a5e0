/**
 * Published ports on the host (`-p`, `-P`): which host port each request
 * gets, and where a running container's bindings are kept so that the
 * host sync (endpoint.ts syncHost) builds the DNAT rules of every running
 * container at once:
 *
 *   <network dir>/ports/<container id>.json   the container's bindings
 *
 * A file counts only while its container holds a lease on the network (the
 * sync reads both under the host lock, and drops files without a lease):
 * a container killed with its minibox leaves a file that the next sweep's
 * lease reconciliation makes void. Ports are chosen under the same host
 * lock, so two `run`s at once never pick the same free port.
 */
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { networkPaths, rootLayout } from "../../layout.js";
import type { PublishedPort } from "./firewall.js";
import type { Leases } from "./ipam.js";
import type { NetworkRecord } from "./networks.js";
import {
  chooseBindings,
  type PortBinding,
  type PortRequest,
  parseLocalPortRange,
  publishedPorts,
} from "./ports.js";

function portsDir(root: string, network: NetworkRecord) {
  return networkPaths(rootLayout(root).network(network.id));
}

/** Every container's bindings on the network, by container ID. */
export async function readPortFiles(
  root: string,
  network: NetworkRecord,
): Promise<Record<string, PortBinding[]>> {
  const paths = portsDir(root, network);
  const names = await readdir(paths.ports).catch(() => [] as string[]);
  const out: Record<string, PortBinding[]> = {};
  for (const name of names.filter((n) => n.endsWith(".json"))) {
    const id = name.slice(0, -".json".length);
    const text = await readFile(paths.portsOf(id), "utf8").catch(() => undefined);
    if (text !== undefined) out[id] = JSON.parse(text) as PortBinding[];
  }
  return out;
}

async function writePortFile(
  root: string,
  network: NetworkRecord,
  containerId: string,
  bindings: PortBinding[],
): Promise<void> {
  const paths = portsDir(root, network);
  const tmpDir = rootLayout(root).tmp;
  await mkdir(tmpDir, { recursive: true, mode: 0o700 });
  await mkdir(paths.ports, { recursive: true, mode: 0o700 });
  const tmp = join(tmpDir, `ports-${containerId.slice(0, 12)}-${randomBytes(6).toString("hex")}`);
  await writeFile(tmp, `${JSON.stringify(bindings)}\n`);
  await rename(tmp, paths.portsOf(containerId));
}

/** Forget a container's bindings (missing is fine). */
export async function removePortFile(
  root: string,
  network: NetworkRecord,
  containerId: string,
): Promise<void> {
  await rm(portsDir(root, network).portsOf(containerId), { force: true });
}

/** Whether nothing on the host holds the socket `b` asks for (a bind that is let go at once). */
export function portIsFree(b: PortBinding): Promise<boolean> {
  const host = b.hostIp === "" ? "0.0.0.0" : b.hostIp;
  return new Promise((resolve) => {
    if (b.proto === "udp") {
      const s = createSocket("udp4");
      s.once("error", () => resolve(false));
      s.bind({ port: b.hostPort, address: host, exclusive: true }, () =>
        s.close(() => resolve(true)),
      );
      return;
    }
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen({ port: b.hostPort, host, exclusive: true }, () =>
      server.close(() => resolve(true)),
    );
  });
}

function localPortRange(): [number, number] {
  let text: string | undefined;
  try {
    text = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8");
  } catch {
    text = undefined;
  }
  return parseLocalPortRange(text);
}

/**
 * Choose the container's host ports and record them on its network; the
 * caller holds the host lock (endpoint.ts withHostLock) and the container
 * its lease. `others` are the networks whose containers' ports count as
 * taken (all of them: a host port is the host's, whatever the network).
 */
export async function reservePorts(
  root: string,
  network: NetworkRecord,
  containerId: string,
  requests: readonly PortRequest[],
  others: readonly NetworkRecord[],
): Promise<PortBinding[]> {
  const taken: PortBinding[] = [];
  for (const n of others) {
    for (const [id, list] of Object.entries(await readPortFiles(root, n))) {
      if (id !== containerId) taken.push(...list);
    }
  }
  const bindings = await chooseBindings(requests, taken, localPortRange(), portIsFree);
  await writePortFile(root, network, containerId, bindings);
  return bindings;
}

/**
 * The DNAT rules of a network's containers: the bindings of each container
 * that holds a lease, to its leased address. Files of containers without a
 * lease (released, or swept after a crash) are removed.
 */
export async function networkPublishedPorts(
  root: string,
  network: NetworkRecord,
  leases: Leases,
): Promise<PublishedPort[]> {
  const out: PublishedPort[] = [];
  for (const [id, bindings] of Object.entries(await readPortFiles(root, network))) {
    const ip = leases[id]?.ip;
    if (ip === undefined) await removePortFile(root, network, id);
    else out.push(...publishedPorts(bindings, ip));
  }
  return out;
}
