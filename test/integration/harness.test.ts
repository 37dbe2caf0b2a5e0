// Tests of the test harness itself: if these fail, every registry-backed test
// would fail for reasons that have nothing to do with minibox.
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { clientEnv, resetTokenRequests, testEnv, tokenRequests } from "../support/testenv.js";
import { ExecError, httpRequest, run, sha256Digest } from "../support/util.js";

const env = testEnv();

/** skopeo with host logins ignored; rejects with ExecError (stderr kept) on failure. */
function skopeo(args: string[]) {
  return run("skopeo", ["--insecure-policy", ...args], { env: clientEnv(env) });
}

async function inspect(host: string, ref: string, extra: string[] = []) {
  const { stdout } = await skopeo([
    "inspect",
    "--tls-verify=false",
    ...extra,
    `docker://${host}/${ref}`,
  ]);
  return JSON.parse(stdout) as Record<string, unknown>;
}

async function expectSkopeoFailure(p: Promise<unknown>, pattern: RegExp) {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ExecError);
  expect((err as ExecError).stderr).toMatch(pattern);
}

const basicAuth = (user: string, pass: string) =>
  `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;

describe("test harness", () => {
  it("serves fixtures/layered with its 3 layers and the expected digest", async () => {
    const f = env.fixtures.layered;
    const info = await inspect(env.registries.anon, `${f.repo}:${f.tag}`);
    expect(info.Layers).toHaveLength(3);
    expect(info.Layers).toEqual(f.layerDigests);
    expect(info.Digest).toBe(f.manifestDigest);
    expect(info.Architecture).toBe("amd64");
  });

  it("token registry: anonymous may pull public repos but not private/base", async () => {
    const pub = await inspect(env.registries.token, "fixtures/base:latest");
    expect(pub.Digest).toBe(env.fixtures.base.manifestDigest);
    await expectSkopeoFailure(
      inspect(env.registries.token, "private/base:latest"),
      /unauthorized|denied|authentication required/i,
    );
    const priv = await inspect(env.registries.token, "private/base:latest", [
      "--creds",
      `${env.user}:${env.password}`,
    ]);
    expect(priv.Digest).toBe(env.fixtures.privateBase.manifestDigest);
  });

  it("token server: counts requests, issues scoped JWTs, rejects a wrong password", async () => {
    await resetTokenRequests();
    expect(await tokenRequests()).toBe(0);
    await inspect(env.registries.token, "fixtures/base:latest");
    expect(await tokenRequests()).toBeGreaterThan(0);

    const url = `${env.tokenServer}/token?service=minibox-test-registry&scope=repository:private/base:pull,push`;
    const bad = await httpRequest(url, {
      headers: { Authorization: basicAuth(env.user, "wrong") },
    });
    expect(bad.status).toBe(401);

    const claims = async (headers: Record<string, string>) => {
      const res = await httpRequest(url, { headers });
      expect(res.status).toBe(200);
      const body = JSON.parse(res.body.toString()) as { token: string; expires_in: number };
      expect(body.expires_in).toBe(300);
      const parts = body.token.split(".");
      expect(parts).toHaveLength(3);
      return JSON.parse(Buffer.from(parts[1], "base64url").toString()) as {
        access: Array<{ name: string; actions: string[] }>;
      };
    };
    const user = await claims({ Authorization: basicAuth(env.user, env.password) });
    expect(user.access).toEqual([
      { type: "repository", name: "private/base", actions: ["pull", "push"] },
    ]);
    const anon = await claims({});
    expect(anon.access[0].actions).toEqual([]);
  });

  it("basic-auth registry refuses without credentials and accepts with them", async () => {
    await expectSkopeoFailure(
      inspect(env.registries.basic, "fixtures/base:latest"),
      /unauthorized|authentication required/i,
    );
    const info = await inspect(env.registries.basic, "fixtures/base:latest", [
      "--creds",
      `${env.user}:${env.password}`,
    ]);
    expect(info.Digest).toBe(env.fixtures.base.manifestDigest);
  });

  it("fixtures/multi is an index of 2 manifests whose amd64 entry is the base image", async () => {
    const { stdout } = await skopeo([
      "inspect",
      "--raw",
      "--tls-verify=false",
      `docker://${env.registries.anon}/fixtures/multi:latest`,
    ]);
    expect(sha256Digest(stdout)).toBe(env.fixtures.multi.indexDigest);
    const index = JSON.parse(stdout) as {
      mediaType: string;
      manifests: Array<{ digest: string; platform: { architecture: string; os: string } }>;
    };
    expect(index.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    expect(index.manifests).toHaveLength(2);
    const amd64 = index.manifests.find((m) => m.platform.architecture === "amd64");
    expect(amd64?.digest).toBe(env.fixtures.base.manifestDigest);
    expect(env.fixtures.multi.amd64ManifestDigest).toBe(env.fixtures.base.manifestDigest);
  });

  it("schema2 and oci fixtures carry the manifest types they promise", async () => {
    const raw = async (repo: string) =>
      JSON.parse(
        (
          await skopeo([
            "inspect",
            "--raw",
            "--tls-verify=false",
            `docker://${env.registries.anon}/${repo}:latest`,
          ])
        ).stdout,
      ) as { mediaType: string; config: { digest: string } };
    const s2 = await raw(env.fixtures.schema2.repo);
    expect(s2.mediaType).toBe("application/vnd.docker.distribution.manifest.v2+json");
    expect(s2.config.digest).toBe(env.fixtures.base.configDigest);
    const oci = await raw(env.fixtures.oci.repo);
    expect(oci.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
  });

  it("the broken fixtures are broken in exactly the intended way", async () => {
    const blob = (repo: string, digest: string) =>
      httpRequest(`http://${env.registries.anon}/v2/${repo}/blobs/${digest}`);

    // tampered: same length, valid gzip, wrong digest.
    const t = env.fixtures.tampered;
    const served = await blob(t.repo, t.layerDigests[0]);
    expect(served.status).toBe(200);
    expect(sha256Digest(served.body)).not.toBe(t.layerDigests[0]);
    expect(sha256Digest(served.body)).toBe(t.servedDigest);
    expect(() => gunzipSync(served.body)).not.toThrow();

    // corrupt-gzip: right digest, undecompressable.
    const c = env.fixtures.corruptGzip;
    const corrupt = await blob(c.repo, c.layerDigests[0]);
    expect(sha256Digest(corrupt.body)).toBe(c.layerDigests[0]);
    expect(() => gunzipSync(corrupt.body)).toThrow();

    // evil: the escaping entry survived into the served tar.
    const e = env.fixtures.evil;
    const evil = await blob(e.repo, e.layerDigests[0]);
    expect(gunzipSync(evil.body).includes(Buffer.from(e.escapeEntry))).toBe(true);
  });
});
