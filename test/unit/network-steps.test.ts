import { describe, expect, it } from "vitest";
import { helperFailure } from "../../src/runtime/network/netlink.js";
import {
  checkIfName,
  containerNetSteps,
  hostVethName,
  macForAddress,
  sameSubnet,
  vethSteps,
} from "../../src/runtime/plan/network-steps.js";
import { stepFields } from "../../src/runtime/plan/steps.js";

describe("interface names", () => {
  it("accepts what the kernel accepts: 1 to 15 characters, no '/', ':' or blanks", () => {
    expect(checkIfName("eth0")).toBe("eth0");
    expect(checkIfName("a".repeat(15))).toBe("a".repeat(15));
    for (const bad of ["", "a".repeat(16), "a/b", "a:b", "a b", ".", ".."]) {
      expect(() => checkIfName(bad), bad).toThrow(/invalid interface name/);
    }
  });

  it("names the host end of a veth after the container: 15 characters at most", () => {
    expect(hostVethName("0123456789abcdef0123")).toBe("mbx0123456789ab");
  });
});

describe("addresses", () => {
  it("derives the MAC from the IPv4 address as Docker does", () => {
    expect(macForAddress("172.17.0.2")).toBe("02:42:ac:11:00:02");
    expect(macForAddress("10.88.255.254")).toBe("02:42:0a:58:ff:fe");
    expect(() => macForAddress("10.0.0.256")).toThrow(/invalid IPv4/);
  });

  it("tells whether two addresses share a subnet", () => {
    expect(sameSubnet("10.88.0.2", "10.88.0.1", 16)).toBe(true);
    expect(sameSubnet("10.88.1.2", "10.88.0.1", 24)).toBe(false);
    expect(sameSubnet("10.88.0.2", "192.168.0.1", 1)).toBe(false);
  });
});

describe("vethSteps", () => {
  it("one [parent] step: the pair, its peer eth0 in the init's netns, on the bridge", () => {
    const [step, ...rest] = vethSteps({ hostIf: "mbx0123", bridge: "minibox0", mtu: 1500 });
    expect(rest).toEqual([]);
    expect(step && stepFields(step)).toEqual(["mbx0123", "eth0", "{pid}", "minibox0", "1500"]);
    expect(step?.describe).toBe(
      "veth mbx0123 on bridge minibox0, peer eth0 in the init's netns, MTU 1500",
    );
  });

  it("refuses a bad name or MTU before any executor runs", () => {
    expect(() => vethSteps({ hostIf: "x".repeat(16), bridge: "b", mtu: 0 })).toThrow(/name/);
    expect(() => vethSteps({ hostIf: "v", bridge: "b", peerIf: "e/0", mtu: 0 })).toThrow(/name/);
    expect(() => vethSteps({ hostIf: "v", bridge: "b", mtu: 40 })).toThrow(/MTU 40/);
  });
});

describe("containerNetSteps", () => {
  it("the interface (MAC from the address, up) then the default route via the gateway", () => {
    const steps = containerNetSteps({ address: "10.88.0.2", prefix: 16, gateway: "10.88.0.1" });
    expect(steps.map((s) => [s.op, ...stepFields(s)])).toEqual([
      ["netif", "eth0", "02:42:0a:58:00:02", "10.88.0.2/16"],
      ["route-default", "10.88.0.1", "eth0"],
    ]);
    expect(steps.map((s) => s.describe)).toEqual([
      "eth0: MAC 02:42:0a:58:00:02, address 10.88.0.2/16, up",
      "default route via 10.88.0.1 dev eth0",
    ]);
  });

  it("keeps a MAC and interface name given", () => {
    const [netif] = containerNetSteps({
      ifname: "net1",
      address: "10.0.0.5",
      prefix: 24,
      gateway: "10.0.0.1",
      mac: "02:00:00:00:00:05",
    });
    expect(netif && stepFields(netif)).toEqual(["net1", "02:00:00:00:00:05", "10.0.0.5/24"]);
  });

  it("refuses what the kernel would refuse, in words", () => {
    const ok = { address: "10.0.0.5", prefix: 24, gateway: "10.0.0.1" };
    expect(() => containerNetSteps({ ...ok, gateway: "10.0.1.1" })).toThrow(/not in 10.0.0.5\/24/);
    expect(() => containerNetSteps({ ...ok, prefix: 33 })).toThrow(/prefix length/);
    expect(() => containerNetSteps({ ...ok, address: "10.0.0" })).toThrow(/invalid IPv4/);
    expect(() => containerNetSteps({ ...ok, mac: "02:42" })).toThrow(/invalid MAC/);
  });
});

describe("helperFailure: minibox-net's failure as one MiniboxError", () => {
  const args = ["bridge", "br0", "10.0.0.1/24", "0"];
  it("the helper's own line when it wrote one", () => {
    const e = helperFailure(args, {
      status: 1,
      signal: null,
      stderr: "netlink RTM_NEWLINK bridge br0: Operation not permitted\n",
    });
    expect(e.userLine()).toBe("netlink RTM_NEWLINK bridge br0: Operation not permitted");
  });

  it("otherwise the command and how it ended", () => {
    expect(helperFailure(args, { status: 3, signal: null, stderr: "" }).message).toBe(
      "minibox-net bridge br0 10.0.0.1/24 0: exit status 3",
    );
    expect(helperFailure(args, { status: null, signal: "SIGKILL", stderr: "" }).message).toMatch(
      /killed by SIGKILL/,
    );
    const error = new Error("spawn ENOENT");
    expect(
      helperFailure(["del", "x"], { status: null, signal: null, stderr: "", error }).message,
    ).toBe("minibox-net del x: spawn ENOENT");
  });
});
