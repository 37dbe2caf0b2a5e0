// Test-side access to the environment built by global-setup.ts.
import { inject } from "vitest";
import type { TestEnv } from "./types.js";

export type { FixtureImage, FixtureIndex, TestEnv, TestFixtures } from "./types.js";

declare module "vitest" {
  export interface ProvidedContext {
    testenv: TestEnv;
  }
}

/** The registries, credentials and fixture expectations of this test run. */
export function testEnv(): TestEnv {
  const env = inject("testenv");
  if (!env)
    throw new Error("testenv not provided: run through vitest with test/support/global-setup.ts");
  return env;
}

/** Environment for spawning skopeo (or minibox) so host-side registry logins are ignored. */
export function clientEnv(env: TestEnv = testEnv()): NodeJS.ProcessEnv {
  return { ...process.env, REGISTRY_AUTH_FILE: env.authFile };
}

/** Token server request count (the server lives in the vitest main process). */
export async function tokenRequests(env: TestEnv = testEnv()): Promise<number> {
  const res = await fetch(`${env.tokenServer}/stats`);
  return ((await res.json()) as { requests: number }).requests;
}

export async function resetTokenRequests(env: TestEnv = testEnv()): Promise<void> {
  await fetch(`${env.tokenServer}/stats/reset`, { method: "POST" });
}
