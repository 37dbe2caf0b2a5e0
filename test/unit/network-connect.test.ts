// network connect / disconnect against a fake host: what changes in the
// container's state, the leases, and what the netlink helper is asked to do.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { containerPaths } from "../../src/layout.js";
import { connectContainer, disconnectContainer } from "../../src/runtime/network/connect.js";
import { readLeases } from "../../src/runtime/network/ipam.js";
import { networkMembers } from "../../src/runtime/network/members.js";
import type { AttachArgs, NetlinkHelper } from "../../src/runtime/network/netlink.js";
import { createNetwork, type NetworkRecord } from "../../src/runtime/network/networks.js";
import type { ContainerState } from "../../src/runtime/state.js";

const ID = "a".repeat(64);

function fakeOps(dir: string) {
  const links = new Set<string>();
  const attached: AttachArgs[] = [];
  const procSys = join(dir, "proc-sys");
  mkdirSync(join(procSys, "net/ipv4"), { recursive: true });
  writeFileSync(join(procSys, "net/ipv4/ip_forward"), "0\n");
  const helper: NetlinkHelper = {
    ensureBridge: (name) => void links.add(name),
    deleteLink: (name) => void links.delete(name),
    linkExists: (name) => links.has(name),
    attach: (o) => {
      attached.push(o);
      links.add(o.hostIf);
    },
  };
  return {
    links,
    attached,
    ops: { dir, helper, nft: () => "", procSys, listRuleset: () => [], resolver: async () => {} },
  };
}

function writeContainer(root: string, over: Partial<ContainerState>): void {
  const paths = containerPaths(root, ID);
  mkdirSync(paths.dir, { recursive: true });
  const state = {
    id: ID,
    name: "app",
    imageId: "sha256:x",
    imageRef: "x",
    created: "",
    status: "running",
    miniboxPid: 1,
    autoRemove: false,
    networkMode: "bridge",
    ...over,
  };
  writeFileSync(paths.state, JSON.stringify(state));
}

function readState(root: string): ContainerState {
  return JSON.parse(readFileSync(containerPaths(root, ID).state, "utf8"));
}

describe("network connect / disconnect (fake host)", () => {
  let root: string;
  let web: NetworkRecord;
  beforeEach(async () => {
    root = mkdtempSync(join(tmpdir(), "mbx-connect-"));
    web = await createNetwork(root, { name: "web", subnet: "10.89.0.0/24", routes: [] });
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("running: a lease, a veth eth1 into its netns, the endpoint and request recorded; disconnect undoes it", async () => {
    const host = fakeOps(root);
    const first = { network: "bridge", networkId: "n", bridge: "minibox0", ip: "172.30.0.2" };
    const eth0 = {
      ...first,
      prefix: 16,
      gateway: "172.30.0.1",
      mac: "m",
      hostIf: "mbxaaaaaaaaaaaa",
    };
    writeContainer(root, { pid: 4242, network: eth0 });
    const c = { id: ID, running: true };
    await connectContainer(root, c, "web", { aliases: ["db"], ip: "10.89.0.9" }, host.ops);
    expect(host.attached).toEqual([
      {
        hostIf: `mb1${ID.slice(0, 12)}`,
        peerIf: "eth1",
        pid: 4242,
        bridge: web.bridge,
        mac: "02:42:0a:59:00:09",
        cidr: "10.89.0.9/24",
        gateway: "10.89.0.1",
      },
    ]);
    expect(await readLeases(root, web)).toEqual({
      [ID]: { ip: "10.89.0.9", root, dns: { name: "app", aliases: ["db"] } },
    });
    const state = readState(root);
    expect(state.networkRequests).toEqual([
      { network: "bridge" },
      { network: "web", aliases: ["db"], ip: "10.89.0.9" },
    ]);
    expect((state.network as { ifname?: string }[]).map((e) => e.ifname)).toEqual([
      undefined,
      "eth1",
    ]);
    expect(await networkMembers(root, web)).toMatchObject([
      { id: ID, name: "app", aliases: ["db"], ip: "10.89.0.9", prefix: 24 },
    ]);
    await expect(connectContainer(root, c, "web", {}, host.ops)).rejects.toThrow(
      "endpoint with name app already exists in network web",
    );
    await disconnectContainer(root, c, "web", false, host.ops);
    expect(await readLeases(root, web)).toEqual({});
    expect(host.links.has(`mb1${ID.slice(0, 12)}`)).toBe(false);
    expect(readState(root).networkRequests).toEqual([{ network: "bridge" }]);
    expect(readState(root).network).toEqual([eth0]);
    await expect(disconnectContainer(root, c, "web", false, host.ops)).rejects.toThrow(
      `container ${ID} is not connected to network web`,
    );
    await disconnectContainer(root, c, "web", true, host.ops);
  });

  it("stopped: only the state changes (applied at the next start)", async () => {
    const host = fakeOps(root);
    writeContainer(root, { status: "exited" });
    await connectContainer(root, { id: ID, running: false }, "web", {}, host.ops);
    expect(host.attached).toEqual([]);
    expect(await readLeases(root, web)).toEqual({});
    expect(readState(root).networkRequests).toEqual([
      { network: "bridge" },
      { network: "web", aliases: undefined, ip: undefined },
    ]);
  });

  it("Docker's refusals: none-mode containers, host and none networks, aliases on bridge", async () => {
    const host = fakeOps(root);
    const c = { id: ID, running: false };
    writeContainer(root, { status: "exited", networkMode: undefined });
    await expect(connectContainer(root, c, "web", {}, host.ops)).rejects.toThrow(
      "one of the networks in private (none) mode",
    );
    writeContainer(root, { status: "exited", networkRequests: [{ network: "web" }] });
    await expect(connectContainer(root, c, "host", {}, host.ops)).rejects.toThrow(
      "container cannot be disconnected from host network or connected to host network",
    );
    await expect(connectContainer(root, c, "bridge", { aliases: ["x"] }, host.ops)).rejects.toThrow(
      "network-scoped alias is supported only for containers in user defined networks",
    );
    await expect(connectContainer(root, c, "nope", {}, host.ops)).rejects.toThrow(
      "network nope not found",
    );
  });
});
