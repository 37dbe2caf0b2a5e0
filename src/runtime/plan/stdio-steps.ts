/** The program's stdin and terminal, on the container's side. */
import type { BareStep } from "./steps.js";

/** Without -i (and without -t) the program reads /dev/null, as in Docker. */
export function stdinSteps(terminal: boolean, interactive: boolean): BareStep[] {
  if (terminal || interactive) return [];
  return [{ op: "stdin-null", describe: "stdin from /dev/null (no -i)" }];
}

/** -t: the pty is opened inside the container (its devpts), its master sent back over the pty step's socket. */
export function consoleSteps(terminal: boolean): BareStep[] {
  if (!terminal) return [];
  return [
    {
      op: "console",
      describe:
        "open a pty in the container's /dev/pts, send its master to minibox, make it our terminal",
    },
  ];
}
