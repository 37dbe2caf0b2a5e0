/**
 * minibox-runc's pause, resume, update and ps (runc's flags), wired to
 * src/runtime/oci/container-control.ts; and the verbs refused outright
 * (events, checkpoint, restore), each with its own reason.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { MiniboxError } from "../errors.js";
import {
  pauseContainer,
  psJson,
  psTable,
  resumeContainer,
  updateContainer,
} from "../runtime/oci/container-control.js";
import {
  limitsFromFlags,
  limitsFromResources,
  type UpdateFlags,
} from "../runtime/oci/update-resources.js";
import type { GlobalOptions } from "./runtime-verbs.js";

/** Verbs runc has that minibox-runc refuses, and why (one line each). */
export const REFUSED_VERBS: Record<string, string> = {
  events:
    "events is not supported by minibox-runc: it has no event stream or --stats " +
    "(containerd asks for it only to collect metrics; read the container's cgroup files instead)",
  checkpoint: "checkpoint is not supported by minibox-runc (no CRIU)",
  restore: "restore is not supported by minibox-runc (no CRIU)",
};

function updateVerb(program: Command, globals: () => GlobalOptions): void {
  program
    .command("update")
    .description("update container resource constraints")
    .option("-r, --resources <file>", "a LinuxResources JSON file, or - for stdin (flags ignored)")
    .option("--memory <bytes>", "memory limit (in bytes, or with a unit: 64m)")
    .option("--memory-swap <bytes>", "total memory usage (memory + swap); -1: unlimited swap")
    .option("--cpu-quota <usecs>", "CPU CFS hardcap limit per period")
    .option("--cpu-period <usecs>", "CPU CFS period")
    .option("--cpu-share <shares>", "CPU shares (relative weight)")
    .option("--cpu-shares <shares>", "the same as --cpu-share")
    .option("--pids-limit <n>", "maximum number of pids in the container")
    .option("--cpuset-cpus <list>", "CPUs in which to allow execution (0-3, 0,1)")
    .option("--cpuset-mems <list>", "memory nodes in which to allow execution (0-3, 0,1)")
    .option("--memory-reservation <bytes>", "memory reservation or soft limit (in bytes, or 64m)")
    .argument("<container-id>")
    .action((id: string, flags: UpdateFlags & { resources?: string }) => {
      const limits =
        flags.resources !== undefined
          ? limitsFromResources(readResources(flags.resources))
          : limitsFromFlags(flags);
      updateContainer(globals().root, id, limits);
    });
}

function readResources(file: string): string {
  try {
    return readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (err) {
    throw new MiniboxError(`--resources ${file}: ${(err as Error).message}`);
  }
}

export function registerControlVerbs(program: Command, globals: () => GlobalOptions): void {
  program
    .command("pause")
    .description("suspend all processes in the container (the freezer)")
    .argument("<container-id>")
    .action((id: string) => pauseContainer(globals().root, id));
  program
    .command("resume")
    .description("resume all processes of a paused container")
    .argument("<container-id>")
    .action((id: string) => resumeContainer(globals().root, id));
  updateVerb(program, globals);
  program
    .command("ps")
    .description("display the processes running inside a container")
    .option("-f, --format <format>", "table or json", "table")
    .argument("<container-id>")
    .argument("[ps-args...]")
    .passThroughOptions()
    .action((id: string, psArgs: string[], opts: { format: string }) => {
      const root = globals().root;
      if (opts.format === "json") process.stdout.write(psJson(root, id));
      else if (opts.format === "table") process.stdout.write(psTable(root, id, psArgs));
      else throw new MiniboxError(`invalid format option`);
    });
  for (const [verb, reason] of Object.entries(REFUSED_VERBS)) {
    program
      .command(verb)
      .description("(not supported: see docs/oci-runtime.md)")
      .allowUnknownOption()
      .helpOption(false)
      .argument("[args...]")
      .action(() => {
        throw new MiniboxError(reason);
      });
  }
}
