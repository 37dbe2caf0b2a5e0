/**
 * The host side of a bridge network, through native/build/minibox-net: the
 * bridge itself, deleting links, and a veth into a running container. Node has no AF_NETLINK socket, so these
 * requests are made by our own small C program (it shares native/netlink.c
 * with the executor); minibox never runs `ip`.
 */
import { spawnSync } from "node:child_process";
import { MiniboxError } from "../../errors.js";
import { nativeProgram } from "../../sys/native.js";

/** minibox-net's exit status for `link-exists` when the link is not there. */
const NO_SUCH_LINK = 2;

export function netHelperPath(): string {
  return nativeProgram("minibox-net", "MINIBOX_NET", "network helper");
}

export interface HelperOutcome {
  status: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  error?: Error;
}

/** A failed run as one MiniboxError: the helper's own line when it wrote one. */
export function helperFailure(args: readonly string[], r: HelperOutcome): MiniboxError {
  const what = `minibox-net ${args.join(" ")}`;
  if (r.error) return new MiniboxError(`${what}: ${r.error.message}`);
  if (r.signal) return new MiniboxError(`${what}: killed by ${r.signal}`);
  const line = r.stderr.trim().split("\n").pop();
  return new MiniboxError(line || `${what}: exit status ${r.status}`);
}

export interface NetlinkHelper {
  /** The bridge, created if missing, given `cidr` ("10.88.0.1/16") if it lacks it, up. Idempotent. */
  ensureBridge(name: string, cidr: string, mtu: number): void;
  /** Delete a link (a veth takes its peer along); a missing link is not an error. */
  deleteLink(name: string): void;
  linkExists(name: string): boolean;
  /**
   * `network connect` on a running container: a veth from `bridge` into the
   * netns of `pid`, configured there (MAC, address, up, and the default
   * route via `gateway` unless it has one; no gateway: no route). All or nothing.
   */
  attach(o: AttachArgs): void;
}

export interface AttachArgs {
  hostIf: string;
  /** The interface's name in the container (eth1…). */
  peerIf: string;
  /** A process in the container's network namespace (its init). */
  pid: number;
  bridge: string;
  mac: string;
  /** "10.89.0.5/24" */
  cidr: string;
  gateway?: string;
}

/** The helper's argument list for `attach` (pure). */
export function attachArgs(o: AttachArgs): string[] {
  return ["attach", o.hostIf, o.peerIf, String(o.pid), o.bridge, o.mac, o.cidr, o.gateway ?? "-"];
}

/**
 * The helper's commands. `command` is how to start it: the built program by
 * default; tests prefix it (`ip netns exec NS …`) to act in a namespace of their own.
 */
export function netlinkHelper(command?: readonly string[]): NetlinkHelper {
  // Found on first use, not here: a command that never changes the host's
  // network (a sweep with nothing to drop, --network none) must not need it.
  const run = (args: string[]): HelperOutcome => {
    const [program, ...prefix] = (command ?? [netHelperPath()]) as [string, ...string[]];
    const r = spawnSync(program, [...prefix, ...args], { encoding: "utf8", stdio: "pipe" });
    return { status: r.status, signal: r.signal, stderr: r.stderr ?? "", error: r.error };
  };
  const check = (args: string[]) => {
    const r = run(args);
    if (r.status !== 0) throw helperFailure(args, r);
  };
  return {
    ensureBridge: (name, cidr, mtu) => check(["bridge", name, cidr, String(mtu)]),
    deleteLink: (name) => check(["del", name]),
    attach: (o) => check(attachArgs(o)),
    linkExists: (name) => {
      const args = ["link-exists", name];
      const r = run(args);
      if (r.status === 0) return true;
      if (r.status === NO_SUCH_LINK) return false;
      throw helperFailure(args, r);
    },
  };
}
