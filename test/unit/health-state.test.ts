// The health state machine lives in C, where the monitor applies it after
// each probe (native/health.c health_apply: Docker's rules from
// daemon/health.go); native/health-test.c checks it case by case.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { expect, it } from "vitest";

const HEALTH_TEST = path.resolve(__dirname, "..", "..", "native", "build", "health-test");

it("health_apply: start period, retries, streaks, back to healthy (native/health-test.c)", () => {
  const r = spawnSync(HEALTH_TEST, { encoding: "utf8" });
  expect(r.error, "build it first: npm run build").toBeUndefined();
  expect(r.stdout).toBe("");
  expect(r.status).toBe(0);
});
