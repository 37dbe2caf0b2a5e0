// Assembles the whole test environment: fixtures, token server, three
// registries, pushes. Used by vitest's global setup and by scripts/test-env.ts
// (benchmarks, manual runs), so it has no vitest imports.
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildFixtures, publishFixtures } from "./fixtures.js";
import { type Registries, startRegistries } from "./registry.js";
import { startTokenServer, TEST_PASSWORD, TEST_USER, type TokenServer } from "./token-server.js";
import type { TestEnv } from "./types.js";
import { pidAlive } from "./util.js";

/** test/.work — git-ignored. */
export const WORK_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", ".work");

export interface RunningTestEnv {
  env: TestEnv;
  /** Stops every process started here; removes the work dir unless `keep`. */
  stop(opts?: { keep?: boolean }): Promise<void>;
}

/**
 * Removes work dirs of earlier runs whose process is gone (a killed runner
 * never reaches its teardown). Dirs of live processes — another engineer's
 * concurrent run — are left alone.
 */
async function removeStaleWorkDirs(): Promise<void> {
  const names = await readdir(WORK_ROOT).catch(() => [] as string[]);
  await Promise.all(
    names
      .filter((n) => /^\d+$/.test(n) && Number(n) !== process.pid && !pidAlive(Number(n)))
      .map((n) => rm(path.join(WORK_ROOT, n), { recursive: true, force: true })),
  );
}

export async function startTestEnv(opts: { workDir?: string } = {}): Promise<RunningTestEnv> {
  const t0 = Date.now();
  await removeStaleWorkDirs();
  const workDir = opts.workDir ?? path.join(WORK_ROOT, String(process.pid));
  await rm(workDir, { recursive: true, force: true });
  const storageDir = path.join(workDir, "registry-storage");
  const layoutsDir = path.join(workDir, "layouts");
  const tmpDir = path.join(workDir, "tmp");
  await Promise.all([storageDir, layoutsDir, tmpDir].map((d) => mkdir(d, { recursive: true })));

  // An empty auth file keeps skopeo from using logins stored on the host.
  const authFile = path.join(workDir, "auth.json");
  await writeFile(authFile, JSON.stringify({ auths: {} }));
  const skopeoEnv = { ...process.env, REGISTRY_AUTH_FILE: authFile, TMPDIR: tmpDir };

  let tokenServer: TokenServer | undefined;
  let registries: Registries | undefined;
  const stop = async (stopOpts: { keep?: boolean } = {}) => {
    const errors: unknown[] = [];
    await registries?.stop().catch((e) => errors.push(e));
    await tokenServer?.stop().catch((e) => errors.push(e));
    if (!stopOpts.keep) await rm(workDir, { recursive: true, force: true });
    if (errors.length > 0) throw errors[0];
  };

  try {
    // Building is CPU work, starting servers is mostly waiting: overlap them.
    const builtP = buildFixtures(layoutsDir);
    // Awaited below; this only stops an early failure counting as "unhandled".
    builtP.catch(() => {});
    tokenServer = await startTokenServer({ dir: workDir });
    registries = await startRegistries({
      dir: workDir,
      storageDir,
      tokenRealm: `${tokenServer.url}/token`,
      tokenCertFile: tokenServer.certFile,
      user: TEST_USER,
      password: TEST_PASSWORD,
    });
    const built = await builtP;
    const fixtures = await publishFixtures(built, {
      anon: registries.anon.host,
      authenticated: registries.token.host,
      user: TEST_USER,
      password: TEST_PASSWORD,
      env: skopeoEnv,
      storageDir,
    });
    // Pushing private/base went through the token server; tests start from zero.
    tokenServer.requests.length = 0;
    const env: TestEnv = {
      workDir,
      registries: {
        anon: registries.anon.host,
        token: registries.token.host,
        basic: registries.basic.host,
      },
      tokenServer: tokenServer.url,
      user: TEST_USER,
      password: TEST_PASSWORD,
      storageDir,
      authFile,
      fixtures,
      setupMs: Date.now() - t0,
    };
    await writeFile(path.join(workDir, "testenv.json"), JSON.stringify(env, null, 2));
    return { env, stop };
  } catch (e) {
    // A failed setup gets no teardown call: clean up here. Keep the dir for the logs.
    await stop({ keep: true }).catch(() => {});
    throw e;
  }
}
