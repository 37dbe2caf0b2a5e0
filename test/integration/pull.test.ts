// `minibox pull` against the real registry (Debian's docker-registry), with
// images pushed by skopeo: every fixture, every auth mode, the failure cases.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { MINIBOX_JS, oneLineError, REPO_ROOT, type Sandbox, sandbox } from "../support/minibox.js";
import { assertStoreConsistent, imageIds, layerDirs } from "../support/store-check.js";
import { testEnv, tokenRequests } from "../support/testenv.js";

const env = testEnv();
const anon = env.registries.anon;
const fx = env.fixtures;

let box: Sandbox;
beforeEach(() => {
  box = sandbox();
});
afterEach(() => {
  box.cleanup();
});

function inspect(name: string) {
  return box.run(["image", "inspect", name]).then((r) => {
    expect(r.stderr).toBe("");
    return JSON.parse(r.stdout)[0];
  });
}

describe("pull", () => {
  test("a one-layer OCI image: layer unpacked, listed, inspectable", async () => {
    const ref = `${anon}/fixtures/base:latest`;
    const r = await box.run(["pull", ref]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("latest: Pulling from fixtures/base");
    expect(r.stdout).toContain(`Digest: ${fx.base.manifestDigest}`);
    expect(r.stdout).toContain(`Status: Downloaded newer image for ${ref}`);
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe(ref);

    const [layer] = layerDirs(box.root);
    expect(layer).toBeDefined();
    const busybox = path.join(layer as string, "diff", "bin", "busybox");
    expect(statSync(busybox).mode & 0o111).not.toBe(0);
    expect(lstatSync(path.join(layer as string, "diff", "bin", "sh")).isSymbolicLink()).toBe(true);
    expect(statSync(path.join(layer as string, "diff", "tmp")).mode & 0o7777).toBe(0o1777);

    const info = await inspect(ref);
    expect(info.Id).toBe(fx.base.configDigest);
    expect(info.RootFS).toEqual({ Type: "layers", Layers: fx.base.diffIds });
    expect(info.RepoTags).toEqual([ref]);
    expect(info.RepoDigests).toEqual([`${anon}/fixtures/base@${fx.base.manifestDigest}`]);
    expect(info.Os).toBe("linux");
    expect(info.Architecture).toBe("amd64");
    expect(info.Config.Cmd).toEqual(["sh"]);

    const images = await box.run(["images"]);
    const lines = images.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
    expect(lines[1]).toMatch(
      new RegExp(
        `^${anon}/fixtures/base\\s+latest\\s+${fx.base.configDigest.slice(7, 19)}\\s+.+ ago\\s+[\\d.]+[kM]B$`,
      ),
    );
    const quiet = await box.run(["images", "-q"]);
    expect(quiet.stdout).toBe(`${fx.base.configDigest.slice(7, 19)}\n`);
    const digests = await box.run(["images", "--digests"]);
    expect(digests.stdout).toContain(fx.base.manifestDigest);

    const again = await box.run(["pull", ref]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("Status: Image is up to date");
    assertStoreConsistent(box.root);
  });

  test("three layers with whiteouts stack into the expected tree under overlayfs", async () => {
    const r = await box.run(["pull", "-q", `${anon}/fixtures/layered`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${anon}/fixtures/layered:latest\n`);
    const info = await inspect(`${anon}/fixtures/layered`);
    expect(info.RootFS.Layers).toEqual(fx.layered.diffIds);
    const lower = (info.GraphDriver.Data.LowerDir as string).split(":");
    const dirs = [info.GraphDriver.Data.UpperDir as string, ...lower];
    expect(dirs).toHaveLength(3);

    // Mount the layers the way `run` will, read-only, and look at the result.
    const mnt = mkdtempSync(path.join(tmpdir(), "minibox-overlay-"));
    execFileSync("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${dirs.join(":")}`, mnt]);
    try {
      for (const p of fx.layered.expectAbsent) expect(existsSync(path.join(mnt, p)), p).toBe(false);
      for (const p of fx.layered.expectPresent) expect(existsSync(path.join(mnt, p)), p).toBe(true);
      const big = path.join(mnt, fx.layered.bigFile.path);
      expect(statSync(big).size).toBe(fx.layered.bigFile.size);
      const sum = execFileSync("sha256sum", [big]).toString().split(" ")[0];
      expect(sum).toBe(fx.layered.bigFile.sha256);
    } finally {
      execFileSync("umount", [mnt]);
      rmSync(mnt, { recursive: true });
    }
    assertStoreConsistent(box.root);
  });

  test("a multi-platform index resolves to the host's platform; --platform picks another", async () => {
    const r = await box.run(["pull", `${anon}/fixtures/multi:latest`]);
    expect(r.code, r.stderr).toBe(0);
    const info = await inspect(`${anon}/fixtures/multi:latest`);
    expect(info.Id).toBe(fx.base.configDigest);
    expect(info.RepoDigests).toEqual([`${anon}/fixtures/multi@${fx.multi.indexDigest}`]);
    // The amd64 entry is the base image: its layer is shared, not stored twice.
    const base = await box.run(["pull", `${anon}/fixtures/base`]);
    expect(base.stdout).toMatch(/Already exists/);
    expect(layerDirs(box.root)).toHaveLength(1);

    const arm = await box.run(["pull", "--platform", "linux/arm64", `${anon}/fixtures/arm64only`]);
    expect(arm.code, arm.stderr).toBe(0);
    const armInfo = await inspect(`${anon}/fixtures/arm64only`);
    expect(armInfo.Architecture).toBe("arm64");
  });

  test("an index without the host's platform fails clearly and stores nothing", async () => {
    const r = await box.run(["pull", `${anon}/fixtures/arm64only`]);
    expect(r.code).not.toBe(0);
    expect(oneLineError(r)).toMatch(/no image for platform linux\/amd64.*offers: linux\/arm64/);
    expect(imageIds(box.root)).toEqual([]);
  });

  test.each([
    ["schema2", "application/vnd.docker.distribution.manifest.v2+json"],
    ["oci", "application/vnd.oci.image.manifest.v1+json"],
  ] as const)("a %s manifest", async (name, mediaType) => {
    const f = fx[name];
    expect(f.manifestMediaType).toBe(mediaType);
    const r = await box.run(["pull", `${anon}/${f.repo}:${f.tag}`]);
    expect(r.code, r.stderr).toBe(0);
    const info = await inspect(`${anon}/${f.repo}:${f.tag}`);
    expect(info.Id).toBe(f.configDigest);
    expect(info.RepoDigests).toEqual([`${anon}/${f.repo}@${f.manifestDigest}`]);
    expect(info.RootFS.Layers).toEqual(f.diffIds);
  });

  test("on a terminal, pull draws a live progress line per layer", () => {
    const r = spawnSync(
      "python3",
      [
        path.join(REPO_ROOT, "test/support/pty-driver.py"),
        "[]",
        "--",
        process.execPath,
        MINIBOX_JS,
        "--root",
        box.root,
        "pull",
        `${anon}/fixtures/layered`,
      ],
      { encoding: "utf8", timeout: 60_000 },
    );
    expect(r.status, r.stdout).toBe(0);
    // One bar per layer, redrawn in place: cursor movements and "=" bars, byte counts.
    expect(r.stdout.includes("\u001b[")).toBe(true);
    expect(r.stdout).toMatch(
      /[0-9a-f]{12}: (Pull complete|Download complete|Extracting|Downloading) \[?=*/,
    );
    expect(r.stdout).toMatch(/[\d.]+[kM]B\/[\d.]+[kM]B/);
  });

  test("pull by digest", async () => {
    const ref = `${anon}/fixtures/base@${fx.base.manifestDigest}`;
    const r = await box.run(["pull", ref]);
    expect(r.code, r.stderr).toBe(0);
    const info = await inspect(ref);
    expect(info.Id).toBe(fx.base.configDigest);
    // A digest pull adds no tag, as in Docker.
    expect(info.RepoTags).toEqual([]);
  });

  test("image history lists the config's history, newest first", async () => {
    await box.run(["pull", "-q", `${anon}/fixtures/layered`]);
    const r = await box.run(["history", `${anon}/fixtures/layered`]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
    const config = JSON.parse(
      readFileSync(
        path.join(box.root, "blobs", "sha256", fx.layered.configDigest.slice(7)),
        "utf8",
      ),
    );
    expect(lines).toHaveLength(1 + config.history.length);
    expect(lines[1]?.startsWith(fx.layered.configDigest.slice(7, 19))).toBe(true);
    for (const line of lines.slice(2)) expect(line.startsWith("<missing>")).toBe(true);
    // The 20 MB layer shows its size; a metadata-only entry shows 0B.
    expect(r.stdout).toMatch(/\b2\d\.\d+MB\b/);
  });
});

describe("authentication", () => {
  test("bearer tokens: anonymous pull of a public repo, refused for a private one", async () => {
    const pub = await box.run(["pull", "-q", `${env.registries.token}/fixtures/base`]);
    expect(pub.code, pub.stderr).toBe(0);
    const priv = await box.run(["pull", `${env.registries.token}/private/base`]);
    expect(priv.code).not.toBe(0);
    expect(oneLineError(priv)).toMatch(
      new RegExp(`denied.*authentication required.*minibox login ${env.registries.token}`),
    );
  });

  test("bearer tokens with login: stored with mode 0600, one token per scope", async () => {
    const bad = await box.run(["login", "-u", env.user, "--password-stdin", env.registries.token], {
      input: "wrong\n",
    });
    expect(bad.code).not.toBe(0);
    oneLineError(bad);
    expect(existsSync(path.join(box.config, "config.json"))).toBe(false);

    const ok = await box.run(["login", "-u", env.user, "--password-stdin", env.registries.token], {
      input: `${env.password}\n`,
    });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("Login Succeeded");
    const file = path.join(box.config, "config.json");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const auths = JSON.parse(readFileSync(file, "utf8")).auths;
    expect(Buffer.from(auths[env.registries.token].auth, "base64").toString()).toBe(
      `${env.user}:${env.password}`,
    );

    const before = await tokenRequests();
    const r = await box.run(["pull", `${env.registries.token}/private/base`]);
    expect(r.code, r.stderr).toBe(0);
    // manifest, config and layer all share the repository:private/base:pull scope.
    expect((await tokenRequests()) - before).toBe(1);

    const out = await box.run(["logout", env.registries.token]);
    expect(out.stdout).toContain("Removing login credentials");
    expect(JSON.parse(readFileSync(file, "utf8")).auths[env.registries.token]).toBeUndefined();
  });

  test("basic auth: refused without credentials, accepted from the environment", async () => {
    const none = await box.run(["pull", `${env.registries.basic}/fixtures/base`]);
    expect(none.code).not.toBe(0);
    expect(oneLineError(none)).toMatch(/authentication required/);
    const withEnv = await box.run(["pull", "-q", `${env.registries.basic}/fixtures/base`], {
      env: { MINIBOX_USERNAME: env.user, MINIBOX_PASSWORD: env.password },
    });
    expect(withEnv.code, withEnv.stderr).toBe(0);
    const login = await box.run([
      "login",
      "-u",
      env.user,
      "-p",
      env.password,
      env.registries.basic,
    ]);
    expect(login.code, login.stderr).toBe(0);
    const withLogin = await box.run(["pull", "-q", `${env.registries.basic}/private/base`]);
    expect(withLogin.code, withLogin.stderr).toBe(0);
  });
});

describe("errors: one line, non-zero, nothing left behind", () => {
  const cases: [string, () => string, RegExp][] = [
    [
      "unknown repository",
      () => `${anon}/fixtures/nope`,
      /manifest for .*fixtures\/nope:latest not found/,
    ],
    [
      "unknown tag",
      () => `${anon}/fixtures/base:nope`,
      /manifest for .*fixtures\/base:nope not found/,
    ],
    [
      "registry down",
      () => "127.0.0.1:2/fixtures/base",
      /cannot reach registry 127\.0\.0\.1:2.*refused/,
    ],
    ["invalid reference", () => `${anon}/Fixtures/Base`, /invalid reference format.*lowercase/],
    ["tampered blob", () => `${anon}/fixtures/tampered`, /digest mismatch for blob sha256:/],
    ["corrupt gzip", () => `${anon}/fixtures/corrupt-gzip`, /corrupt/],
    ["path traversal in a layer", () => `${anon}/fixtures/evil`, /\.\.\/evil-escape\.txt/],
  ];
  test.each(cases)("%s", async (_name, ref, message) => {
    const r = await box.run(["pull", ref()]);
    expect(r.code).not.toBe(0);
    expect(oneLineError(r)).toMatch(message);
    expect(imageIds(box.root)).toEqual([]);
    expect(layerDirs(box.root)).toEqual([]);
    assertStoreConsistent(box.root);
  });

  test("the evil layer wrote nothing outside its directory", async () => {
    await box.run(["pull", `${anon}/fixtures/evil`]);
    for (const dir of [box.root, path.join(box.root, "tmp"), path.join(box.root, "layers")]) {
      expect(existsSync(path.join(dir, "evil-escape.txt"))).toBe(false);
    }
    const find = execFileSync("find", [
      path.dirname(box.root),
      "-name",
      "evil-escape.txt",
    ]).toString();
    expect(find).toBe("");
  });
});
