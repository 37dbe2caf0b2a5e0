/** `port C [PRIVATE_PORT[/PROTO]]`: a container's published ports, as `docker port` lists them. */
import type { Command } from "commander";
import { findContainer } from "../runtime/lifecycle.js";
import { portLines } from "../runtime/network/ports.js";
import { contextFrom } from "./context.js";

/** Registered as `port` and `container port`. */
export function registerPort(parent: Command): void {
  parent
    .command("port")
    .description("List a container's port mappings, or the host address of one port")
    .argument("<container>")
    .argument("[private-port]", "PORT[/PROTO], e.g. 8080 or 53/udp")
    .action(async (name: string, which: string | undefined, _opts: unknown, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const c = await findContainer(store.root, name);
      // A stopped container publishes nothing (its bindings went with it).
      const bindings = c.running ? (c.ports ?? []) : [];
      for (const line of portLines(bindings, name, which)) console.log(line);
    });
}
