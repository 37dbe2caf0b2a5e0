// vitest globalSetup: runs once in the main process before any test file.
// Builds the fixtures and starts the registries + token server; test workers
// get a JSON description through provide/inject (see testenv.ts).
import type { TestProject } from "vitest/node";
import { startTestEnv } from "./env.js";
import { leaksSince, snapshot } from "./leaks.js";
import { MINIBOX_JS } from "./minibox.js";
// Type-only: brings the ProvidedContext augmentation in without loading vitest's runtime here.
import type { TestEnv } from "./testenv.js";

export default async function setup({ provide }: TestProject) {
  const before = snapshot(MINIBOX_JS);
  const running = await startTestEnv();
  const env: TestEnv = running.env;
  provide("testenv", env);
  console.log(
    `minibox test env: ${env.setupMs} ms, registries anon=${env.registries.anon} ` +
      `token=${env.registries.token} basic=${env.registries.basic}, work dir ${env.workDir}`,
  );
  return async () => {
    // MINIBOX_KEEP_WORK=1 keeps registry logs and layouts for a post-mortem.
    await running.stop({ keep: process.env.MINIBOX_KEEP_WORK === "1" });
    // Tests must leave no mount, temporary root or minibox process behind;
    // a leak fails the run even when every test passed.
    const leaks = leaksSince(before, MINIBOX_JS);
    if (leaks.length > 0) {
      throw new Error(`tests left these behind:\n  ${leaks.join("\n  ")}`);
    }
  };
}
