/** `cp`: files between a container and the host (src/runtime/cp/copy.ts). */
import type { Command } from "commander";
import { MiniboxError } from "../errors.js";
import { contextFrom } from "./context.js";

/** "NAME:PATH" names a container path; a local path with a colon is written "./a:b" or absolute, as in Docker. */
export function splitCpArg(arg: string): { container?: string; path: string } {
  if (arg === "-" || arg.startsWith("/") || arg.startsWith(".")) return { path: arg };
  const colon = arg.indexOf(":");
  if (colon <= 0) return { path: arg };
  return { container: arg.slice(0, colon), path: arg.slice(colon + 1) || "/" };
}

export function registerCpCommand(program: Command): void {
  program
    .command("cp")
    .description("Copy files/folders between a container and the local filesystem")
    .usage(
      "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n       minibox cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
    )
    .argument("<src>", "CONTAINER:SRC_PATH, SRC_PATH, or - (a tar on stdin)")
    .argument("<dest>", "CONTAINER:DEST_PATH, DEST_PATH, or - (a tar on stdout)")
    .option("-a, --archive", "archive mode (copy all uid/gid information)")
    .option("-L, --follow-link", "always follow symbol link in SRC_PATH")
    .action(runCp);
}

async function runCp(
  srcArg: string,
  destArg: string,
  flags: { archive?: boolean; followLink?: boolean },
  cmd: Command,
): Promise<void> {
  const ctx = contextFrom(cmd);
  const src = splitCpArg(srcArg);
  const dest = splitCpArg(destArg);
  const opts = { archive: !!flags.archive, followLink: !!flags.followLink };
  if (src.container && dest.container) {
    throw new MiniboxError("copying between containers is not supported");
  }
  const { copyFromContainer, copyToContainer } = await import("../runtime/cp/copy.js");
  if (src.container) {
    if (dest.path === "-" && process.stdout.isTTY) {
      throw new MiniboxError(
        "cowardly refusing to write a tar to a terminal",
        "redirect the output",
      );
    }
    return copyFromContainer(ctx.store, src.container, src.path, dest.path, opts, process.stdout);
  }
  if (dest.container) {
    if (src.path === "-" && process.stdin.isTTY) {
      throw new MiniboxError(
        "requested a tar from stdin, but stdin is a terminal",
        "redirect a tar into minibox cp",
      );
    }
    return copyToContainer(ctx.store, src.path, dest.container, dest.path, opts, process.stdin);
  }
  throw new MiniboxError(
    "must specify at least one container source",
    "minibox cp CONTAINER:SRC_PATH DEST_PATH or minibox cp SRC_PATH CONTAINER:DEST_PATH",
  );
}
