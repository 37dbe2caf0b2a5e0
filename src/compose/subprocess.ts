/**
 * Running one minibox command as a child process, for the verbs whose work
 * lives in the CLI layer: `run` (its flag parsing and checks are
 * run-command.ts's, and a detached container's monitor is a process of its
 * own anyway), `build` (its interrupt handling and RUN-step containers),
 * `pull` (progress bars) and `exec` (the terminal). Compose hands those the
 * exact command line a user would type, so they behave as that would.
 */
import { spawn } from "node:child_process";
import { MiniboxError } from "../errors.js";

export interface Minibox {
  /** Global options (--root, --config, …) passed before the command. */
  globals: string[];
}

/** Runs `minibox GLOBALS ARGS`; stdout captured when `capture`, else shared. Resolves to the exit code. */
export function minibox(
  mb: Minibox,
  args: string[],
  opts: { capture?: boolean; quiet?: boolean } = {},
): Promise<{ code: number; stdout: string }> {
  const entry = process.argv[1] as string;
  const child = spawn(process.execPath, [entry, ...mb.globals, ...args], {
    stdio: ["inherit", opts.capture || opts.quiet ? "pipe" : "inherit", "inherit"],
  });
  let stdout = "";
  child.stdout?.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 + 15 : 1), stdout }));
  });
}

/** As `minibox`, but a non-zero exit is an error (the child has printed its own line). */
export async function mustMinibox(mb: Minibox, args: string[], what: string, quiet = true) {
  const { code, stdout } = await minibox(mb, args, { quiet });
  if (code !== 0) throw new MiniboxError(`${what} failed (exit status ${code})`);
  return stdout;
}
