/**
 * Published ports as executor steps: each host port a container publishes
 * is bound by the executor first thing in [setup] and held by it (then by
 * the monitor) until the container exits, as podman's conmon does. A port
 * another program holds fails the run there, before any mount, namespace
 * or process is made. Pure.
 */
import { MiniboxError } from "../../errors.js";
import { type PortBinding, portKey } from "../network/ports.js";
import { parseIPv4 } from "../network/subnet.js";
import type { HoldPortStep } from "./steps.js";

/** [setup] One hold-port step per binding; "" (every interface) is 0.0.0.0. */
export function holdPortSteps(bindings: readonly PortBinding[]): HoldPortStep[] {
  return bindings.map((b) => {
    const ip = b.hostIp === "" ? "0.0.0.0" : b.hostIp;
    if (parseIPv4(ip) === undefined) {
      throw new MiniboxError(`publishing on ${ip}: only IPv4 host addresses are supported`);
    }
    if (!Number.isInteger(b.hostPort) || b.hostPort < 1 || b.hostPort > 65535) {
      throw new MiniboxError(`invalid host port ${b.hostPort}`);
    }
    return {
      op: "hold-port",
      proto: b.proto,
      ip,
      port: b.hostPort,
      describe: `hold ${b.proto} ${ip}:${b.hostPort} (published ${portKey(b.containerPort, b.proto)})`,
    };
  });
}
