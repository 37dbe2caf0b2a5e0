/** The program's stdin and terminal, on the container's side. */
import type { BareStep } from "./steps.js";

/** Without -i (and without -t) the program reads /dev/null, as in Docker. */
export function stdinSteps(terminal: boolean, interactive: boolean): BareStep[] {
  if (terminal || interactive) return [];
  return [{ op: "stdin-null", describe: "stdin from /dev/null (no -i)" }];
}

/**
 * -t: the pty is opened inside the container (its devpts), its master sent
 * back over the pty step's socket — or, for minibox-runc, to the caller's
 * --console-socket.
 */
export function consoleSteps(terminal: boolean, to = "minibox"): BareStep[] {
  if (!terminal) return [];
  return [
    {
      op: "console",
      describe: `open a pty in the container's /dev/pts, send its master to ${to}, make it our terminal`,
    },
  ];
}

/** minibox-runc create: the init's last step before its program is to wait for `start`. */
export function waitStartSteps(fifo: string | undefined): BareStep[] {
  if (!fifo) return [];
  return [{ op: "wait-start", describe: `say "created", then wait until start writes ${fifo}` }];
}
