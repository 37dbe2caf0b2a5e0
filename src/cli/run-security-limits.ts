/**
 * `run`'s --ulimit, --group-add, --sysctl and --device: the flags, and their
 * values parsed and checked as Docker's CLI does before anything is made.
 */
import type { Command } from "commander";
import type { RunFlags } from "../runtime/container.js";
import { parseDeviceFlag } from "../runtime/devices.js";
import { sysctlsFrom } from "../runtime/sysctls.js";
import { mergeUlimits, parseUlimit } from "../runtime/ulimits.js";
import { collect } from "./options.js";

export interface SecurityLimitOptions {
  ulimit?: string[];
  groupAdd?: string[];
  sysctl?: string[];
  device?: string[];
}

export function addSecurityLimitOptions(run: Command): void {
  run
    .option(
      "--ulimit <name=soft[:hard]>",
      "a resource limit, e.g. nofile=1024:2048 or core=0; -1 for unlimited (repeatable)",
      collect,
    )
    .option(
      "--group-add <group>",
      "an additional group for the container's process: a name in the image's /etc/group, or a gid (repeatable)",
      collect,
    )
    .option(
      "--sysctl <name=value>",
      "a namespaced kernel setting: net.* (not with --network host), kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, kernel.domainname (repeatable)",
      collect,
    )
    .option(
      "--device <host[:container][:perms]>",
      "a host device in the container's /dev, perms a subset of rwm (default rwm); a directory adds every device in it (repeatable)",
      collect,
    );
}

export function securityLimitFlags(
  opts: SecurityLimitOptions,
  network: RunFlags["network"],
): Pick<RunFlags, "ulimits" | "groupAdd" | "sysctls" | "devices"> {
  // Every namespace but the network one is always the container's own in minibox.
  const own = { network: network !== "host", ipc: true, uts: true };
  return {
    ulimits: mergeUlimits((opts.ulimit ?? []).map(parseUlimit)),
    groupAdd: opts.groupAdd ?? [],
    sysctls: sysctlsFrom(opts.sysctl ?? [], own),
    devices: (opts.device ?? []).map(parseDeviceFlag),
  };
}
