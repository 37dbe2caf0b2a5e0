/**
 * Inter-process locks with flock(2).
 *
 * minibox has no daemon, so two commands can touch the same blob, layer or
 * index at once. flock is the right tool: the kernel drops the lock when the
 * holder dies (even by SIGKILL), so a killed pull never leaves a stale lock for
 * the next command to trip over. We poll with LOCK_NB instead of blocking,
 * because a blocking flock through FFI would freeze Node's event loop (and
 * with it the progress display and any download in flight).
 */
import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { flock, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN } from "./libc.js";

export interface Lock {
  release(): void;
}

/** Try once; undefined when someone else holds it. */
export function tryLock(
  path: string,
  mode: "shared" | "exclusive" = "exclusive",
): Lock | undefined {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, "a+", 0o600);
  const op = (mode === "shared" ? LOCK_SH : LOCK_EX) | LOCK_NB;
  if (!flock(fd, op)) {
    closeSync(fd);
    return undefined;
  }
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      flock(fd, LOCK_UN);
      closeSync(fd);
    },
  };
}

/**
 * Wait for the lock. `onWait` is called once if we have to wait, so a caller
 * can tell the user ("Waiting for another pull of this layer").
 */
export async function acquireLock(
  path: string,
  mode: "shared" | "exclusive" = "exclusive",
  onWait?: () => void,
): Promise<Lock> {
  let delay = 5;
  let told = false;
  for (;;) {
    const lock = tryLock(path, mode);
    if (lock) return lock;
    if (!told) {
      told = true;
      onWait?.();
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 100);
  }
}

/** Run `fn` while holding the lock at `path`. */
export async function withLock<T>(
  path: string,
  fn: () => Promise<T>,
  onWait?: () => void,
): Promise<T> {
  const lock = await acquireLock(path, "exclusive", onWait);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}
