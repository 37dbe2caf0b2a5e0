/** Signals as runc's `kill` takes them: "KILL", "SIGKILL", "kill" or "9". */
import { constants } from "node:os";
import { MiniboxError } from "../../errors.js";

export function signalNumber(text: string): number {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n >= 1 && n <= 64) return n;
  } else {
    const upper = text.toUpperCase();
    const name = (
      upper.startsWith("SIG") ? upper : `SIG${upper}`
    ) as keyof typeof constants.signals;
    const n = constants.signals[name];
    if (n !== undefined) return n;
  }
  throw new MiniboxError(`unknown signal "${text}"`);
}
