/**
 * A container's bridge networking as executor steps: from the host side the
 * veth pair ([parent], once the init exists), inside the container's netns
 * its interface and default route ([child]). Pure: names and addresses are
 * checked here, so a bad value is refused before the executor starts.
 */
import { MiniboxError } from "../../errors.js";
import { macFromIp, parseIPv4 } from "../network/subnet.js";
import type { NetifStep, RouteDefaultStep, VethStep } from "./steps.js";

/** Linux's IFNAMSIZ (16) less the terminating NUL. */
export const IFNAME_MAX = 15;

/** The name the kernel would accept for a network interface, or a MiniboxError. */
export function checkIfName(name: string): string {
  const ok =
    name.length > 0 &&
    name.length <= IFNAME_MAX &&
    name !== "." &&
    name !== ".." &&
    !/[/:\s]/.test(name);
  if (!ok) {
    throw new MiniboxError(
      `invalid interface name "${name}"`,
      `1 to ${IFNAME_MAX} characters, no '/', ':' or whitespace`,
    );
  }
  return name;
}

/** The characters that tell eth1, eth2… apart in a host end's name ("x" is eth0's). */
const EXTRA_IF = "123456789abcdefghijklmnopqrstuvw";
/** How many networks a container can be on at once (eth0 and one per EXTRA_IF character). */
export const MAX_ENDPOINTS = EXTRA_IF.length + 1;

/**
 * The host end of a container's veth for its eth<index>: "mbx" and the
 * first 12 hex digits of its ID for eth0 (15 characters, the most a name
 * may have), "mb1…" for eth1, up to "mbw…": "mb" plus a character that is
 * never "x", so no two containers' or interfaces' names can be equal.
 */
export function hostVethName(containerId: string, index = 0): string {
  const tag = index === 0 ? "x" : EXTRA_IF[index - 1];
  if (tag === undefined || !Number.isInteger(index)) {
    throw new MiniboxError(
      `a container can be on at most ${MAX_ENDPOINTS} networks`,
      "disconnect it from one first",
    );
  }
  return checkIfName(`mb${tag}${containerId.slice(0, 12)}`);
}

function ipv4Number(ip: string): number {
  const n = parseIPv4(ip);
  if (n === undefined) throw new MiniboxError(`invalid IPv4 address "${ip}"`);
  return n;
}

/** Docker's MAC for a container address (see macFromIp), refusing a bad address in words. */
export function macForAddress(ip: string): string {
  ipv4Number(ip);
  return macFromIp(ip);
}

/** Whether a and b are in the same /prefix. */
export function sameSubnet(a: string, b: string, prefix: number): boolean {
  const size = 2 ** (32 - prefix);
  return Math.floor(ipv4Number(a) / size) === Math.floor(ipv4Number(b) / size);
}

export interface VethOptions {
  /** The host end's name (see hostVethName). */
  hostIf: string;
  bridge: string;
  /** 0: the kernel's default (1500). */
  mtu: number;
  /** The peer's name in the container; eth0 by default. */
  peerIf?: string;
}

/** [parent] The container's veth pair, its peer created in the init's netns, the host end on the bridge. */
export function vethSteps(o: VethOptions): VethStep[] {
  const peerIf = checkIfName(o.peerIf ?? "eth0");
  checkIfName(o.hostIf);
  checkIfName(o.bridge);
  if (!Number.isInteger(o.mtu) || (o.mtu !== 0 && (o.mtu < 68 || o.mtu > 65535))) {
    throw new MiniboxError(`invalid MTU ${o.mtu}`, "68 to 65535 (0: the kernel's default)");
  }
  const mtu = o.mtu ? `, MTU ${o.mtu}` : "";
  return [
    {
      op: "veth",
      hostIf: o.hostIf,
      peerIf,
      pid: "{pid}",
      bridge: o.bridge,
      mtu: o.mtu,
      describe: `veth ${o.hostIf} on bridge ${o.bridge}, peer ${peerIf} in the init's netns${mtu}`,
    },
  ];
}

export interface ContainerNetOptions {
  /** eth0 by default. */
  ifname?: string;
  address: string;
  prefix: number;
  gateway: string;
  /** Absent: macForAddress(address). */
  mac?: string;
  /** Add the default route via the gateway (true when absent; not for an --internal network). */
  defaultRoute?: boolean;
}

/** [child] The container's interface (MAC, address, up) and (unless told not to) its default route via the gateway. */
export function containerNetSteps(o: ContainerNetOptions): (NetifStep | RouteDefaultStep)[] {
  const ifname = checkIfName(o.ifname ?? "eth0");
  if (!Number.isInteger(o.prefix) || o.prefix < 1 || o.prefix > 30) {
    throw new MiniboxError(`invalid prefix length /${o.prefix}`, "1 to 30");
  }
  if (!sameSubnet(o.address, o.gateway, o.prefix)) {
    throw new MiniboxError(`gateway ${o.gateway} is not in ${o.address}/${o.prefix}`);
  }
  const mac = o.mac ?? macForAddress(o.address);
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(mac)) {
    throw new MiniboxError(`invalid MAC address "${mac}"`);
  }
  const address = `${o.address}/${o.prefix}`;
  const netif: NetifStep = {
    op: "netif",
    ifname,
    mac,
    address,
    describe: `${ifname}: MAC ${mac}, address ${address}, up`,
  };
  if (o.defaultRoute === false) return [netif];
  return [
    netif,
    {
      op: "route-default",
      gateway: o.gateway,
      ifname,
      describe: `default route via ${o.gateway} dev ${ifname}`,
    },
  ];
}
