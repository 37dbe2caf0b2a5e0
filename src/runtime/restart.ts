/**
 * Restart policies (`run --restart`), decided when a detached container's
 * exit is recorded, and the pause before each new run: like Docker, 100 ms
 * after the first exit, doubling, at most 2 s, so a container that fails at
 * once does not spin.
 */
import type { Store } from "../image/store.js";
import type { ContainerState } from "./state.js";

const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 2000;

/** Docker's restart policies: should this exit (already recorded in `state`) bring the container back? */
export function shouldRestart(state: ContainerState): boolean {
  const policy = state.restartPolicy;
  if (!policy || policy.name === "no" || state.manuallyStopped) return false;
  if (policy.name === "on-failure") {
    return (
      state.exitCode !== 0 &&
      (policy.maximumRetryCount === 0 || (state.restartCount ?? 0) < policy.maximumRetryCount)
    );
  }
  return true;
}

/** The pause before restart number `restartCount` (1 for the first). */
export function restartDelayMs(restartCount: number | undefined): number {
  return Math.min(FIRST_DELAY_MS * 2 ** ((restartCount ?? 1) - 1), MAX_DELAY_MS);
}

/** Wait out the back-off, then start the container again. */
export async function restartAfterBackOff(
  store: Store,
  id: string,
  restartCount: number | undefined,
): Promise<void> {
  await new Promise((r) => setTimeout(r, restartDelayMs(restartCount)));
  // Loaded here: the run machinery is needed only when a restart happens.
  const { startContainer } = await import("./container.js");
  await startContainer(store, id);
}
