// Pulls under stress: killed with SIGKILL mid-way, two at once, a dropped
// connection, a docker.io mirror. A loopback proxy in front of the real
// registry lets the test see (and slow, or cut) the traffic.
import { afterEach, beforeEach, expect, test } from "vitest";
import { type Sandbox, sandbox } from "../support/minibox.js";
import { startProxy } from "../support/proxy.js";
import { assertStoreConsistent, imageIds } from "../support/store-check.js";
import { testEnv } from "../support/testenv.js";

const env = testEnv();
const fx = env.fixtures;
const bigLayer = fx.layered.layerDigests[1] as string;

let box: Sandbox;
beforeEach(() => {
  box = sandbox();
});
afterEach(() => {
  box.cleanup();
});

test("a pull killed with SIGKILL at any moment leaves the store consistent; the next pull completes it", async () => {
  // ~20 MB at 20 MB/s: about a second of download, plus unpacking.
  const proxy = await startProxy(env.registries.anon, { bytesPerSecond: 20_000_000 });
  try {
    const ref = `${proxy.address}/fixtures/layered`;
    for (const delayMs of [30, 150, 400, 700, 1000, 1400]) {
      const { child, done } = box.spawn(["pull", ref]);
      await new Promise((r) => setTimeout(r, delayMs));
      child.kill("SIGKILL");
      await done;
      assertStoreConsistent(box.root);
      const ids = imageIds(box.root);
      // Either the image is complete (checked above) or it is not listed at all.
      expect(ids.length === 0 || ids[0] === fx.layered.configDigest).toBe(true);
    }
    const r = await box.run(["pull", ref]);
    expect(r.code, r.stderr).toBe(0);
    expect(imageIds(box.root)).toEqual([fx.layered.configDigest]);
    assertStoreConsistent(box.root);
    // A partial big blob from a killed pull was resumed with a Range request, not refetched.
    const resumed = proxy.blobGets(bigLayer).some((l) => l.range);
    const fetchedWhole = proxy.blobGets(bigLayer).filter((l) => !l.range).length;
    expect(resumed || fetchedWhole === 1).toBe(true);
  } finally {
    await proxy.close();
  }
});

test("two pulls of the same image at once both succeed and download each blob once", async () => {
  const proxy = await startProxy(env.registries.anon, { bytesPerSecond: 40_000_000 });
  try {
    const ref = `${proxy.address}/fixtures/layered`;
    const a = box.spawn(["pull", ref]);
    const b = box.spawn(["pull", ref]);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect(ra.code, ra.stderr).toBe(0);
    expect(rb.code, rb.stderr).toBe(0);
    for (const digest of fx.layered.layerDigests)
      expect(proxy.blobGets(digest), digest).toHaveLength(1);
    expect(imageIds(box.root)).toEqual([fx.layered.configDigest]);
    assertStoreConsistent(box.root);
  } finally {
    await proxy.close();
  }
});

test("a dropped connection is retried and resumed with a Range request", async () => {
  const proxy = await startProxy(env.registries.anon, {
    dropOnce: { digest: bigLayer, afterBytes: 5_000_000 },
  });
  try {
    const r = await box.run(["pull", `${proxy.address}/fixtures/layered`]);
    expect(r.code, r.stderr).toBe(0);
    const gets = proxy.blobGets(bigLayer);
    expect(gets).toHaveLength(2);
    expect(gets[1]?.range).toMatch(/^bytes=\d+-$/);
    expect(Number(/=(\d+)-/.exec(gets[1]?.range ?? "")?.[1])).toBeGreaterThan(0);
    expect(gets[1]?.status).toBe(206);
    assertStoreConsistent(box.root);
  } finally {
    await proxy.close();
  }
});

test("a docker.io mirror is tried first, and Docker Hub is the fallback", async () => {
  // docker.io/fixtures/base comes from the mirror; "Docker Hub" is pointed at
  // a closed loopback port, so nothing leaves the machine.
  const viaMirror = await box.run(["pull", "-q", "fixtures/base"], {
    env: {
      MINIBOX_REGISTRY_MIRROR: `http://${env.registries.anon}`,
      MINIBOX_DOCKER_HUB_URL: "http://127.0.0.1:2",
    },
  });
  expect(viaMirror.code, viaMirror.stderr).toBe(0);
  expect(viaMirror.stdout).toBe("docker.io/fixtures/base:latest\n");

  const other = sandbox();
  try {
    const fallback = await other.run(
      ["--registry-mirror", "http://127.0.0.1:2", "pull", "fixtures/base"],
      { env: { MINIBOX_DOCKER_HUB_URL: `http://${env.registries.anon}` } },
    );
    expect(fallback.code, fallback.stderr).toBe(0);
    expect(fallback.stdout).toMatch(/mirror http:\/\/127\.0\.0\.1:2 failed/);
    expect(imageIds(other.root)).toEqual([fx.base.configDigest]);
  } finally {
    other.cleanup();
  }
});
