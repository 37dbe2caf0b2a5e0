// Restart policies and the back-off between runs (Docker's: 100 ms, doubling, at most 2 s).
import { describe, expect, test } from "vitest";
import { restartDelayMs, shouldRestart } from "../../src/runtime/restart.js";
import type { ContainerState } from "../../src/runtime/state.js";

const exited = (over: Partial<ContainerState>): ContainerState => ({
  id: "a".repeat(64),
  name: "c",
  imageId: "sha256:b",
  imageRef: "alpine",
  created: "2024-01-01T00:00:00Z",
  status: "exited",
  miniboxPid: 1,
  autoRemove: false,
  exitCode: 0,
  ...over,
});

describe("restart policy", () => {
  test("none, or 'no': never", () => {
    expect(shouldRestart(exited({ exitCode: 1 }))).toBe(false);
    expect(
      shouldRestart(exited({ exitCode: 1, restartPolicy: { name: "no", maximumRetryCount: 0 } })),
    ).toBe(false);
  });

  test("always and unless-stopped: whatever the exit code", () => {
    for (const name of ["always", "unless-stopped"] as const) {
      for (const exitCode of [0, 1, 137]) {
        expect(
          shouldRestart(exited({ exitCode, restartPolicy: { name, maximumRetryCount: 0 } })),
        ).toBe(true);
      }
    }
  });

  test("a container the user stopped or killed stays down, whatever the policy", () => {
    const restartPolicy = { name: "always", maximumRetryCount: 0 } as const;
    expect(shouldRestart(exited({ restartPolicy, manuallyStopped: true }))).toBe(false);
  });

  test("on-failure: only a non-zero exit, up to the retry count (0 = no limit)", () => {
    const onFailure = (maximumRetryCount: number) =>
      ({ name: "on-failure", maximumRetryCount }) as const;
    expect(shouldRestart(exited({ exitCode: 0, restartPolicy: onFailure(0) }))).toBe(false);
    expect(
      shouldRestart(exited({ exitCode: 1, restartPolicy: onFailure(0), restartCount: 99 })),
    ).toBe(true);
    const counts = [0, 1, 2, 3].map((restartCount) =>
      shouldRestart(exited({ exitCode: 2, restartPolicy: onFailure(3), restartCount })),
    );
    expect(counts).toEqual([true, true, true, false]);
  });
});

describe("back-off", () => {
  test("100 ms before the first restart, doubling, never more than 2 s", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 50].map(restartDelayMs)).toEqual([
      100, 200, 400, 800, 1600, 2000, 2000, 2000,
    ]);
  });

  test("no count on record counts as the first restart", () => {
    expect(restartDelayMs(undefined)).toBe(100);
  });
});
