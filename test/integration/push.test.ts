// `minibox push` against the real registry: what arrives is checked by
// pulling it into a fresh root and by skopeo; the traffic (HEAD first, no
// upload for what is there, mounts, chunks) is watched through a proxy.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, test } from "vitest";
import { oneLineError, type Sandbox, sandbox } from "../support/minibox.js";
import { type Proxy as LoggingProxy, type ProxyLog, startProxy } from "../support/proxy.js";
import { assertStoreConsistent } from "../support/store-check.js";
import { clientEnv, testEnv } from "../support/testenv.js";
import { freePort, run } from "../support/util.js";

const env = testEnv();
const anon = env.registries.anon;
const base = env.fixtures.base;
const short = (digest: string) => digest.slice(7, 19);

const boxes: Sandbox[] = [];
function newBox(): Sandbox {
  const box = sandbox();
  boxes.push(box);
  return box;
}
const proxies: LoggingProxy[] = [];
async function proxy(location: "absolute" | "relative"): Promise<LoggingProxy> {
  const p = await startProxy(anon, { location });
  proxies.push(p);
  return p;
}
afterEach(async () => {
  for (const box of boxes.splice(0)) box.cleanup();
  for (const p of proxies.splice(0)) await p.close();
});

/** A sandbox holding fixtures/base (pulled from `from`), tagged as `target`. */
async function boxWithBase(target: string, from = anon): Promise<Sandbox> {
  const box = newBox();
  const pull = await box.run(["pull", "-q", `${from}/fixtures/base`]);
  expect(pull.code, pull.stderr).toBe(0);
  const tag = await box.run(["tag", `${from}/fixtures/base`, target]);
  expect(tag.code, tag.stderr).toBe(0);
  return box;
}

/** Pull `ref` into a fresh root: what a user elsewhere gets. */
async function pullFresh(ref: string): Promise<{ box: Sandbox; info: Record<string, unknown> }> {
  const box = newBox();
  const pull = await box.run(["pull", ref]);
  expect(pull.code, pull.stderr).toBe(0);
  const inspect = await box.run(["image", "inspect", ref]);
  expect(inspect.code, inspect.stderr).toBe(0);
  return { box, info: JSON.parse(inspect.stdout)[0] };
}

/** Manifest and config as skopeo (an independent client) sees them. */
async function skopeo(ref: string) {
  const args = ["inspect", "--tls-verify=false", `docker://${ref}`];
  const opts = { env: clientEnv(env) };
  const raw = JSON.parse(
    (await run("skopeo", [...args.slice(0, 2), "--raw", args[2] as string], opts)).stdout,
  );
  const inspected = JSON.parse((await run("skopeo", args, opts)).stdout);
  return { manifest: raw, digest: inspected.Digest as string };
}

/** The registry requests of a push, as "METHOD kind" for blob and manifest traffic. */
function shape(log: ProxyLog[]): string[] {
  return log.map((l) => {
    const url = new URL(l.url, "http://x");
    if (url.pathname.includes("/blobs/uploads/")) {
      const what = url.searchParams.get("mount")
        ? `mount ${url.searchParams.get("from")}`
        : url.searchParams.get("digest")
          ? `upload ${short(url.searchParams.get("digest") as string)}`
          : "upload";
      return `${l.method} ${what} ${l.status}`;
    }
    const blob = /\/blobs\/(sha256:[a-f0-9]+)$/.exec(url.pathname);
    if (blob) return `${l.method} blob ${short(blob[1] as string)} ${l.status}`;
    if (url.pathname.includes("/manifests/")) return `${l.method} manifest ${l.status}`;
    return `${l.method} ${url.pathname} ${l.status}`;
  });
}

describe("push", () => {
  test("upload, then a fresh pull gets the same image; a second push uploads nothing", async () => {
    // Pulled straight from the registry, pushed through a proxy (another
    // host:port): no repository there is known to hold the blobs, so they are uploaded.
    const p = await proxy("absolute");
    const ref = `${p.address}/pushed/base:v1`;
    const box = await boxWithBase(ref);
    const push = await box.run(["push", ref]);
    expect(push.code, push.stderr).toBe(0);
    expect(push.stderr).toBe("");
    const layer = short(base.diffIds[0] as string);
    expect(push.stdout.split("\n")).toEqual([
      `The push refers to repository [${p.address}/pushed/base]`,
      `${layer}: Preparing`,
      `${layer}: Pushing`,
      `${layer}: Pushed`,
      expect.stringMatching(new RegExp(`^v1: digest: ${base.manifestDigest} size: \\d+$`)),
      "",
    ]);
    // The image's own manifest bytes went up: the digest is the fixture's.
    const layerBlob = short(base.layerDigests[0] as string);
    const config = short(base.configDigest);
    expect(shape(p.log)).toEqual([
      `HEAD blob ${layerBlob} 404`,
      "POST upload 202",
      `PUT upload ${layerBlob} 201`,
      `HEAD blob ${config} 404`,
      "POST upload 202",
      `PUT upload ${config} 201`,
      "PUT manifest 201",
    ]);

    // The image now has a repo digest in the repository it was pushed to.
    const digests = await box.run(["image", "inspect", ref]);
    expect(JSON.parse(digests.stdout)[0].RepoDigests).toContain(
      `${p.address}/pushed/base@${base.manifestDigest}`,
    );
    // `images --digests` shows it on that repository's row.
    const rows = (await box.run(["images", "--digests"])).stdout.split("\n");
    const pushedRow = rows.find((r) => r.startsWith(`${p.address}/pushed/base `));
    expect(pushedRow).toContain(base.manifestDigest);

    p.log.length = 0;
    const again = await box.run(["push", ref]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`${layer}: Layer already exists`);
    expect(shape(p.log)).toEqual([
      `HEAD blob ${layerBlob} 200`,
      `HEAD blob ${config} 200`,
      "PUT manifest 201",
    ]);

    const quiet = await box.run(["push", "-q", ref]);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stdout).toBe(`${ref}\n`);

    const { box: fresh, info } = await pullFresh(`${anon}/pushed/base:v1`);
    expect(info.Id).toBe(base.configDigest);
    expect(info.RepoDigests).toEqual([`${anon}/pushed/base@${base.manifestDigest}`]);
    expect((info.RootFS as { Layers: string[] }).Layers).toEqual(base.diffIds);
    assertStoreConsistent(fresh.root);
    const seen = await skopeo(`${anon}/pushed/base:v1`);
    expect(seen.digest).toBe(base.manifestDigest);
    expect(seen.manifest.config.digest).toBe(base.configDigest);
    expect(seen.manifest.layers.map((l: { digest: string }) => l.digest)).toEqual(
      base.layerDigests,
    );
  });

  test("a blob known in another repository of the registry is mounted, not uploaded", async () => {
    const p = await proxy("absolute");
    // Pulled through the proxy: minibox remembers that proxy/fixtures/base holds these blobs.
    const ref = `${p.address}/pushed/mounted`;
    const box = await boxWithBase(ref, p.address);
    p.log.length = 0;
    const push = await box.run(["push", ref]);
    expect(push.code, push.stderr).toBe(0);
    expect(push.stdout).toContain(
      `${short(base.diffIds[0] as string)}: Mounted from fixtures/base`,
    );
    expect(push.stdout).toMatch(
      new RegExp(`^latest: digest: ${base.manifestDigest} size: \\d+$`, "m"),
    );
    expect(shape(p.log)).toEqual([
      `HEAD blob ${short(base.layerDigests[0] as string)} 404`,
      "POST mount fixtures/base 201",
      `HEAD blob ${short(base.configDigest)} 404`,
      "POST mount fixtures/base 201",
      "PUT manifest 201",
    ]);
    // The mounted repository serves the image, and is now the latest known source.
    const seen = await skopeo(`${anon}/pushed/mounted:latest`);
    expect(seen.digest).toBe(base.manifestDigest);
    await box.run(["tag", ref, `${p.address}/pushed/mounted-again`]);
    const again = await box.run(["push", `${p.address}/pushed/mounted-again`]);
    expect(again.stdout).toContain("Mounted from pushed/mounted\n");

    // A stale hint (the source repository has no such blob): the registry
    // answers 202 and the upload goes on in the session it opened.
    const sources = path.join(box.root, "blob-sources.json");
    const hints = JSON.parse(readFileSync(sources, "utf8"));
    for (const digest of Object.keys(hints)) hints[digest] = [`${p.address}/pushed/never-was`];
    writeFileSync(sources, JSON.stringify(hints));
    await box.run(["tag", ref, `${p.address}/pushed/fallback`]);
    p.log.length = 0;
    const fallback = await box.run(["push", `${p.address}/pushed/fallback`]);
    expect(fallback.code, fallback.stderr).toBe(0);
    expect(fallback.stdout).toContain(`${short(base.diffIds[0] as string)}: Pushed`);
    expect(shape(p.log).slice(0, 3)).toEqual([
      `HEAD blob ${short(base.layerDigests[0] as string)} 404`,
      "POST mount pushed/never-was 202",
      `PUT upload ${short(base.layerDigests[0] as string)} 201`,
    ]);
  });

  test("a blob above the chunk size goes up in PATCH chunks, following relative Locations", async () => {
    const p = await proxy("relative");
    const ref = `${p.address}/pushed/chunked:c1`;
    const box = await boxWithBase(ref);
    const manifest = (await skopeo(`${anon}/fixtures/base:latest`)).manifest;
    const size = manifest.layers[0].size as number;
    const chunk = 64 * 1024;
    const push = await box.run(["push", ref], {
      env: { MINIBOX_PUSH_CHUNK_SIZE: String(chunk) },
    });
    expect(push.code, push.stderr).toBe(0);
    expect(push.stdout).toContain(`${short(base.diffIds[0] as string)}: Pushed`);
    const patches = p.log.filter((l) => l.method === "PATCH");
    expect(patches).toHaveLength(Math.ceil(size / chunk));
    expect(patches.every((l) => l.status === 202)).toBe(true);
    // The layer's chunks end with a PUT that carries only the digest; the small config goes whole.
    expect(shape(p.log)).toContain(`PUT upload ${short(base.layerDigests[0] as string)} 201`);
    const { info } = await pullFresh(`${anon}/pushed/chunked:c1`);
    expect(info.Id).toBe(base.configDigest);
    expect(info.RepoDigests).toEqual([`${anon}/pushed/chunked@${base.manifestDigest}`]);
  });

  test.each([
    ["token", env.registries.token],
    ["htpasswd", env.registries.basic],
  ])(
    "to a registry with %s auth: refused in one line without login, done after it",
    async (kind, registry) => {
      // The registries share one storage: each kind gets its own repositories.
      const repo = `pushed/auth-${kind}`;
      const ref = `${registry}/${repo}`;
      const box = await boxWithBase(ref);
      const refused = await box.run(["push", ref]);
      expect(refused.code).not.toBe(0);
      expect(oneLineError(refused)).toMatch(
        new RegExp(`denied.*run 'minibox login ${registry}' first`),
      );
      const login = await box.run(["login", "-u", env.user, "--password-stdin", registry], {
        input: `${env.password}\n`,
      });
      expect(login.code, login.stderr).toBe(0);
      const push = await box.run(["push", ref]);
      expect(push.code, push.stderr).toBe(0);
      expect(push.stdout).toMatch(
        new RegExp(`^latest: digest: ${base.manifestDigest} size: \\d+$`, "m"),
      );
      // A second repository of the same registry: mounted from the first, which
      // needs a token for both (push,pull on the target, pull on the source).
      await box.run(["tag", ref, `${registry}/${repo}-copy`]);
      const copy = await box.run(["push", `${registry}/${repo}-copy`]);
      expect(copy.code, copy.stderr).toBe(0);
      expect(copy.stdout).toContain(`Mounted from ${repo}`);
      if (kind === "token") {
        const { log } = (await (await fetch(`${env.tokenServer}/stats`)).json()) as {
          log: { account: string; scopes: string[]; status: number }[];
        };
        expect(log).toContainEqual({
          account: env.user,
          scopes: [`repository:${repo}-copy:pull,push`, `repository:${repo}:pull`],
          status: 200,
        });
      }
      const { info } = await pullFresh(`${anon}/${repo}-copy`);
      expect(info.Id).toBe(base.configDigest);
    },
  );

  test("an image built here: pushed, pulled on a fresh root, and it runs", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "minibox-push-"));
    try {
      const ctx = path.join(dir, "ctx");
      mkdirSync(ctx);
      writeFileSync(
        path.join(ctx, "Dockerfile"),
        `FROM ${anon}/fixtures/base\nCOPY hello.txt /\nCMD ["cat", "/hello.txt"]\n`,
      );
      writeFileSync(path.join(ctx, "hello.txt"), "pushed by minibox\n");
      const ref = `${anon}/pushed/built:1`;
      const box = newBox();
      const build = await box.run(["build", "-q", "-t", ref, ctx]);
      expect(build.code, build.stderr).toBe(0);
      const local = JSON.parse((await box.run(["image", "inspect", ref])).stdout)[0];
      const push = await box.run(["push", ref]);
      expect(push.code, push.stderr).toBe(0);
      const diffIds = local.RootFS.Layers as string[];
      expect(diffIds).toHaveLength(2);
      // The base layer came from fixtures/base on this registry; the new one is uploaded.
      expect(push.stdout).toContain(`${short(diffIds[0] as string)}: Mounted from fixtures/base`);
      expect(push.stdout).toContain(`${short(diffIds[1] as string)}: Pushed`);
      const digest = /^1: digest: (sha256:[a-f0-9]{64}) size: \d+$/m.exec(push.stdout)?.[1];
      expect(digest).toBeDefined();

      const seen = await skopeo(ref);
      expect(seen.digest).toBe(digest);
      expect(seen.manifest.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
      expect(seen.manifest.config.digest).toBe(local.Id);
      expect(seen.manifest.layers).toHaveLength(2);
      expect(seen.manifest.layers[0].digest).toBe(base.layerDigests[0]);

      const { box: fresh, info } = await pullFresh(ref);
      expect(info.Id).toBe(local.Id);
      expect(info.RepoDigests).toEqual([`${anon}/pushed/built@${digest}`]);
      const ran = await fresh.run(["run", "--rm", ref]);
      expect(ran.code, ran.stderr).toBe(0);
      expect(ran.stdout).toBe("pushed by minibox\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("push -a: every tag of the repository goes up", async () => {
    const repo = `${anon}/pushed/alltags`;
    const box = await boxWithBase(`${repo}:one`);
    expect((await box.run(["tag", `${anon}/fixtures/base`, `${repo}:two`])).code).toBe(0);
    const push = await box.run(["push", "-q", "-a", repo]);
    expect(push.code, push.stderr).toBe(0);
    expect(push.stdout).toBe(`${repo}:one\n${repo}:two\n`);
    for (const tag of ["one", "two"]) {
      expect((await skopeo(`${repo}:${tag}`)).digest).toBe(base.manifestDigest);
    }
    const tagged = await box.run(["push", "-a", `${repo}:one`]);
    expect(oneLineError(tagged)).toMatch(/tag can't be used with --all-tags/);
  });

  test("bad input: an image not in the store, an unreachable registry, a digest reference", async () => {
    const box = newBox();
    const missing = await box.run(["push", `${anon}/pushed/nothing:here`]);
    expect(missing.code).not.toBe(0);
    expect(oneLineError(missing)).toMatch(
      /does not exist locally with the tag: .*pushed\/nothing:here/,
    );
    // An unreachable registry: one line once the retries are spent.
    const nowhere = `127.0.0.1:${await freePort()}`;
    const gone = await boxWithBase(`${nowhere}/pushed/nowhere`);
    const unreachable = await gone.run(["push", `${nowhere}/pushed/nowhere`]);
    expect(unreachable.code).not.toBe(0);
    expect(oneLineError(unreachable)).toBe(
      `minibox: cannot reach registry ${nowhere}: connection to ${nowhere} refused`,
    );
    const byDigest = await box.run(["push", `${anon}/pushed/x@${base.manifestDigest}`]);
    expect(byDigest.code).not.toBe(0);
    expect(oneLineError(byDigest)).toMatch(/cannot push a digest reference/);
  });
});

afterAll(() => {
  for (const box of boxes.splice(0)) box.cleanup();
});
