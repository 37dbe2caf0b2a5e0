/** Signals sent to minibox, passed on to the container through its executor. */

/**
 * Forward `signals` to `to` until the returned function is called, which
 * removes every listener this added. On a terminal, Ctrl-C already reaches
 * every process of the foreground group, the executor too: minibox only has
 * to survive SIGINT, not forward it.
 */
export function forwardSignals(
  to: { signal(sig: NodeJS.Signals): void },
  signals: NodeJS.Signals[],
): () => void {
  const handlers = signals.map((sig) => [sig, () => to.signal(sig)] as const);
  for (const [sig, handler] of handlers) process.on(sig, handler);
  const ignoreTerminalInterrupt = () => {};
  if (process.stdin.isTTY) process.on("SIGINT", ignoreTerminalInterrupt);
  return () => {
    for (const [sig, handler] of handlers) process.off(sig, handler);
    process.off("SIGINT", ignoreTerminalInterrupt);
  };
}
