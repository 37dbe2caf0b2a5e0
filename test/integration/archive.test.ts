// save, load and export against real peers: images move between minibox
// stores, and between minibox and podman / skopeo (Debian's), through tar
// files alone; a container's filesystem comes back through `import`.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";
import { afterAll, afterEach, beforeEach, describe, expect, test } from "vitest";
import {
  MINIBOX_JS,
  oneLineError,
  REPO_ROOT,
  type Result,
  type Sandbox,
  sandbox,
} from "../support/minibox.js";
import { assertStoreConsistent, imageIds } from "../support/store-check.js";
import { clientEnv, testEnv } from "../support/testenv.js";
import { run } from "../support/util.js";

const env = testEnv();
const anon = env.registries.anon;
const fx = env.fixtures;
const base = `${anon}/${fx.base.repo}:latest`;
const layered = `${anon}/${fx.layered.repo}:latest`;

let box: Sandbox;
let other: Sandbox;
let scratch: string;
beforeEach(() => {
  box = sandbox();
  other = sandbox();
  scratch = mkdtempSync(path.join(tmpdir(), "minibox-archive-"));
});
afterEach(() => {
  box.cleanup();
  other.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

/** Every podman store a test made; each must leave no process or mount behind. */
const podmanDirs: string[] = [];
afterAll(() => {
  const leftovers: string[] = [];
  const mountinfo = readFileSync("/proc/self/mountinfo", "utf8");
  for (const dir of podmanDirs) {
    if (mountinfo.includes(dir)) leftovers.push(`mount under ${dir}`);
    for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
      if (cmd.includes(dir)) leftovers.push(`process ${pid} ${cmd}`);
    }
    rmSync(dir, { recursive: true, force: true });
  }
  expect(leftovers).toEqual([]);
});

/** podman with a private store on vfs (no mounts) and no events, cgroups or /run/libpod. */
function podmanStore() {
  const dir = mkdtempSync(path.join(tmpdir(), "minibox-podman-"));
  podmanDirs.push(dir);
  const global = [
    "--root",
    path.join(dir, "root"),
    "--runroot",
    path.join(dir, "run"),
    "--tmpdir",
    path.join(dir, "tmp"),
    "--storage-driver",
    "vfs",
    "--events-backend",
    "none",
    "--cgroup-manager",
    "cgroupfs",
  ];
  return {
    run: (args: string[]) => run("podman", [...global, ...args], { env: clientEnv(env) }),
    // Not `podman system reset`: it also deletes the machine's podman networks.
    cleanup: async () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function skopeo(args: string[]) {
  return run("skopeo", ["--insecure-policy", ...args], { env: clientEnv(env) });
}

/** `minibox ARGS < file`, binary-safe (Sandbox.run feeds only strings). */
function runWithStdin(sb: Sandbox, args: string[], file: string): Promise<Result> {
  const fd = openSync(file, "r");
  const child = spawn(
    process.execPath,
    [MINIBOX_JS, "--root", sb.root, "--config", sb.config, ...args],
    {
      stdio: [fd, "pipe", "pipe"],
    },
  );
  closeSync(fd);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => {
    stdout += d;
  });
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  return new Promise((resolve) => {
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The names and contents of a tar's regular files. */
async function tarFiles(file: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const extract = tar.extract();
  extract.on("entry", (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: unknown) => chunks.push(c as Buffer));
    stream.on("end", () => {
      if (header.type === "file") files.set(header.name, Buffer.concat(chunks));
      next();
    });
  });
  await new Promise<void>((resolve, reject) => {
    extract.on("finish", resolve);
    extract.on("error", reject);
    extract.end(readFileSync(file));
  });
  return files;
}

/** Rewrites a tar, changing one file's content. */
async function rewriteTar(
  src: string,
  dst: string,
  change: (name: string, data: Buffer) => Buffer,
) {
  const files = await tarFiles(src);
  const pack = tar.pack();
  for (const [name, data] of files) pack.entry({ name }, change(name, data));
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  writeFileSync(dst, Buffer.concat(chunks));
}

async function inspectId(sb: Sandbox, name: string): Promise<string> {
  const r = await sb.run(["image", "inspect", "--format", "{{.Id}}", name]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

async function pull(sb: Sandbox, ...refs: string[]) {
  for (const ref of refs) {
    const r = await sb.run(["pull", "-q", ref]);
    expect(r.code, r.stderr).toBe(0);
  }
}

/** Everything in a store that a failed load must leave as it was. */
function storeState(root: string): string {
  const list = (dir: string) =>
    existsSync(path.join(root, dir)) ? readdirSync(path.join(root, dir)).sort().join(",") : "";
  const index = existsSync(path.join(root, "images.json"))
    ? readFileSync(path.join(root, "images.json"), "utf8")
    : "";
  return JSON.stringify({
    index,
    blobs: list("blobs/sha256"),
    layers: list("layers"),
    tmp: list("tmp"),
  });
}

describe("save and load", () => {
  test("save → load into a fresh store: same image IDs and tags, manifest kept, runs", async () => {
    await pull(box, base, layered);
    expect((await box.run(["tag", base, "mybase:1"])).code).toBe(0);
    const file = path.join(scratch, "images.tar");
    const save = await box.run(["save", "-o", file, base, "mybase:1", layered]);
    expect(save.code, save.stderr).toBe(0);
    expect(save.stdout).toBe("");

    // Docker 25's layout: docker-archive and OCI layout in one.
    const files = await tarFiles(file);
    const manifest = JSON.parse(files.get("manifest.json")?.toString() ?? "null");
    expect(manifest).toHaveLength(2);
    expect(manifest[0].RepoTags).toEqual([base, "mybase:1"]);
    expect(manifest[0].Config).toBe(`blobs/sha256/${fx.base.configDigest.slice(7)}`);
    expect(manifest[1].Layers).toHaveLength(3);
    expect(JSON.parse(files.get("oci-layout")?.toString() ?? "{}").imageLayoutVersion).toBe(
      "1.0.0",
    );
    const index = JSON.parse(files.get("index.json")?.toString() ?? "{}");
    expect(
      index.manifests.map((m: { annotations: Record<string, string> }) => m.annotations),
    ).toEqual([
      { "io.containerd.image.name": base, "org.opencontainers.image.ref.name": "latest" },
      {
        "io.containerd.image.name": "docker.io/library/mybase:1",
        "org.opencontainers.image.ref.name": "1",
      },
      { "io.containerd.image.name": layered, "org.opencontainers.image.ref.name": "latest" },
    ]);
    // The registry's manifest goes in unchanged: its digest survives the trip.
    expect(index.manifests[0].digest).toBe(fx.base.manifestDigest);

    // Reproducible: the same images give the same bytes.
    const again = path.join(scratch, "again.tar");
    await box.run(["save", "-o", again, base, "mybase:1", layered]);
    expect(readFileSync(again).equals(readFileSync(file))).toBe(true);

    const load = await other.run(["load", "-i", file]);
    expect(load.code, load.stderr).toBe(0);
    expect(load.stdout).toBe(
      `Loaded image: ${base}\nLoaded image: mybase:1\nLoaded image: ${layered}\n`,
    );
    expect(await inspectId(other, "mybase:1")).toBe(fx.base.configDigest);
    expect(await inspectId(other, layered)).toBe(fx.layered.configDigest);
    assertStoreConsistent(other.root);
    const stored = JSON.parse(readFileSync(path.join(other.root, "images.json"), "utf8"));
    expect(stored.images[fx.base.configDigest].manifestDigest).toBe(fx.base.manifestDigest);

    // The layered image: whiteouts applied, the 20 MB file intact.
    const big = fx.layered.bigFile;
    const r = await other.run([
      "run",
      "--rm",
      layered,
      "sh",
      "-c",
      `sha256sum ${big.path}; ls ${[...fx.layered.expectAbsent, ...fx.layered.expectPresent].join(" ")} 2>&1; true`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(big.sha256);
    for (const p of fx.layered.expectAbsent)
      expect(r.stdout).toMatch(new RegExp(`${p}.*No such file`));
    for (const p of fx.layered.expectPresent)
      expect(r.stdout).not.toMatch(new RegExp(`${p}.*No such file`));

    // Loading again changes nothing and says the same.
    const twice = await other.run(["load", "-q", "-i", file]);
    expect(twice.code, twice.stderr).toBe(0);
    expect(twice.stdout).toBe("");
    expect(imageIds(other.root).sort()).toEqual(
      [fx.base.configDigest, fx.layered.configDigest].sort(),
    );
  });

  test("save by ID to stdout; load of the gzipped archive from stdin prints the ID", async () => {
    await pull(box, base);
    const file = path.join(scratch, "by-id.tar");
    const out = openSync(file, "w");
    const child = spawn(
      process.execPath,
      [
        MINIBOX_JS,
        "--root",
        box.root,
        "--config",
        box.config,
        "save",
        fx.base.configDigest.slice(7, 19),
      ],
      { stdio: ["ignore", out, "pipe"] },
    );
    const code = await new Promise((resolve) => child.on("close", resolve));
    closeSync(out);
    expect(code).toBe(0);
    const gz = path.join(scratch, "by-id.tar.gz");
    writeFileSync(gz, gzipSync(readFileSync(file)));
    const load = await runWithStdin(other, ["load"], gz);
    expect(load.code, load.stderr).toBe(0);
    expect(load.stdout).toBe(`Loaded image ID: ${fx.base.configDigest}\n`);
    const run2 = await other.run([
      "run",
      "--rm",
      fx.base.configDigest.slice(7, 19),
      "cat",
      "/etc/os-release",
    ]);
    expect(run2.stdout).toContain("minibox busybox");
  });

  test("save and export refuse to write a tar to a terminal, as Docker does", async () => {
    await pull(box, base);
    for (const args of [
      ["save", base],
      ["export", "whatever"],
    ]) {
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
          ...args,
        ],
        { encoding: "utf8", timeout: 60_000 },
      );
      expect(r.status).toBe(1);
      expect(r.stdout.trim()).toBe(
        `minibox: cowardly refusing to ${args[0]} to a terminal; use the -o flag or redirect the output`,
      );
    }
  });

  test("a corrupt, truncated or foreign archive: one error line, store unchanged", async () => {
    await pull(box, base, layered);
    const good = path.join(scratch, "good.tar");
    expect((await box.run(["save", "-o", good, base, layered])).code).toBe(0);
    await pull(other, base);
    const before = storeState(other.root);

    const truncated = path.join(scratch, "truncated.tar");
    writeFileSync(truncated, readFileSync(good).subarray(0, 5 * 1024 * 1024));
    const layerHex = fx.layered.layerDigests[1]?.slice(7) as string;
    const flipped = path.join(scratch, "flipped.tar");
    await rewriteTar(good, flipped, (name, data) => {
      if (!name.endsWith(layerHex)) return data;
      const copy = Buffer.from(data);
      copy[copy.length >> 1] ^= 0xff;
      return copy;
    });
    // A blob that matches its name but not what the config says: a swapped layer.
    const swapped = path.join(scratch, "swapped.tar");
    await rewriteTar(good, swapped, (name, data) => {
      if (name !== "manifest.json") return data;
      const m = JSON.parse(data.toString());
      m[1].Layers[2] = `blobs/sha256/${fx.base.layerDigests[0]?.slice(7)}`;
      return Buffer.from(JSON.stringify(m));
    });
    // Without index.json, so manifest.json (which says which blob is which layer) is read.
    const dockerOnly = path.join(scratch, "docker-only.tar");
    {
      const files = await tarFiles(swapped);
      const pack = tar.pack();
      for (const [name, data] of files) if (name !== "index.json") pack.entry({ name }, data);
      pack.finalize();
      const chunks: Buffer[] = [];
      for await (const chunk of pack) chunks.push(chunk as Buffer);
      writeFileSync(dockerOnly, Buffer.concat(chunks));
    }
    const rootfs = path.join(scratch, "rootfs.tar");
    {
      const pack = tar.pack();
      pack.entry({ name: "etc/passwd" }, "root:x:0:0::/:/bin/sh\n");
      pack.finalize();
      const chunks: Buffer[] = [];
      for await (const chunk of pack) chunks.push(chunk as Buffer);
      writeFileSync(rootfs, Buffer.concat(chunks));
    }
    const garbage = path.join(scratch, "garbage.bin");
    writeFileSync(garbage, createHash("sha512").update("x").digest());

    const cases: [string, RegExp][] = [
      [truncated, /cannot load .*truncated\.tar: the archive is truncated or corrupt/],
      [flipped, new RegExp(`blob sha256:${layerHex} is corrupt`)],
      [dockerOnly, /unpacks to sha256:\w+, but the image config says/],
      [
        rootfs,
        /not an image archive: it has neither manifest\.json nor index\.json; for a root filesystem tarball use 'minibox import'/,
      ],
      [garbage, /cannot load .*garbage\.bin: the archive is truncated or corrupt/],
      [path.join(scratch, "missing.tar"), /cannot open .*missing\.tar: no such file/],
    ];
    for (const [file, message] of cases) {
      const r = await other.run(["load", "-i", file]);
      expect(r.code, file).not.toBe(0);
      expect(oneLineError(r)).toMatch(message);
      expect(storeState(other.root), file).toBe(before);
    }
    assertStoreConsistent(other.root);
  });
});

describe("interoperability", () => {
  test("minibox save → skopeo oci-archive: and docker-archive:, podman load", async () => {
    await pull(box, base, layered);
    const one = path.join(scratch, "one.tar");
    expect((await box.run(["save", "-o", one, base])).code).toBe(0);

    const oci = path.join(scratch, "oci");
    await skopeo(["copy", `oci-archive:${one}`, `oci:${oci}:copied`]);
    const raw = JSON.parse((await skopeo(["inspect", "--raw", `oci:${oci}:copied`])).stdout);
    expect(raw.config.digest).toBe(fx.base.configDigest);
    expect(raw.layers.map((l: { digest: string }) => l.digest)).toEqual(fx.base.layerDigests);
    await skopeo(["copy", `docker-archive:${one}`, `oci:${oci}:fromdocker`]);
    const fromDocker = JSON.parse(
      (await skopeo(["inspect", "--config", "--raw", `oci:${oci}:fromdocker`])).stdout,
    );
    expect(fromDocker.rootfs.diff_ids).toEqual(fx.base.diffIds);

    const two = path.join(scratch, "two.tar");
    expect((await box.run(["save", "-o", two, base, layered])).code).toBe(0);
    const podman = podmanStore();
    try {
      const load = await podman.run(["load", "-i", two]);
      expect(load.stdout).toContain(`Loaded image: ${base}`);
      expect(load.stdout).toContain(`Loaded image: ${layered}`);
      const images = (
        await podman.run(["images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
      ).stdout;
      expect(images).toContain(`${base} ${fx.base.configDigest}`);
      expect(images).toContain(`${layered} ${fx.layered.configDigest}`);
    } finally {
      await podman.cleanup();
    }
  });

  test("a Docker schema2 image: saved with its manifest, read by skopeo and minibox", async () => {
    const ref = `${anon}/${fx.schema2.repo}:latest`;
    await pull(box, ref);
    const file = path.join(scratch, "schema2.tar");
    expect((await box.run(["save", "-o", file, ref])).code).toBe(0);
    const oci = path.join(scratch, "oci");
    // An OCI layout destination makes skopeo convert the manifest (and
    // re-serialise the config), so compare what the image is: its layers.
    for (const source of [`oci-archive:${file}`, `docker-archive:${file}`]) {
      await skopeo(["copy", source, `oci:${oci}:copied`]);
      const config = JSON.parse(
        (await skopeo(["inspect", "--config", "--raw", `oci:${oci}:copied`])).stdout,
      );
      expect(config.rootfs.diff_ids, source).toEqual(fx.schema2.diffIds);
    }
    const load = await other.run(["load", "-i", file]);
    expect(load.code, load.stderr).toBe(0);
    const stored = JSON.parse(readFileSync(path.join(other.root, "images.json"), "utf8"));
    expect(stored.images[fx.schema2.configDigest].manifestDigest).toBe(fx.schema2.manifestDigest);
  });

  test("podman save (docker-archive and oci-archive) → minibox load → run", async () => {
    const podman = podmanStore();
    try {
      await podman.run(["pull", "--tls-verify=false", "-q", layered]);
      const docker = path.join(scratch, "podman-docker.tar");
      const oci = path.join(scratch, "podman-oci.tar");
      await podman.run(["save", "-o", docker, layered]);
      await podman.run(["save", "--format", "oci-archive", "-o", oci, layered]);
      for (const [file, sb] of [
        [docker, box],
        [oci, other],
      ] as const) {
        const load = await sb.run(["load", "-i", file]);
        expect(load.code, load.stderr).toBe(0);
        expect(load.stdout).toBe(`Loaded image: ${layered}\n`);
        expect(await inspectId(sb, layered)).toBe(fx.layered.configDigest);
        assertStoreConsistent(sb.root);
        const r = await sb.run(["run", "--rm", layered, "sha256sum", fx.layered.bigFile.path]);
        expect(r.stdout).toContain(fx.layered.bigFile.sha256);
      }
    } finally {
      await podman.cleanup();
    }
  });

  test("skopeo copy docker:// → oci-archive: loads, a multi-platform index picks this platform", async () => {
    const single = path.join(scratch, "skopeo.tar");
    await skopeo([
      "copy",
      "--src-tls-verify=false",
      `docker://${base}`,
      `oci-archive:${single}:${base}`,
    ]);
    const load = await box.run(["load", "-i", single]);
    expect(load.code, load.stderr).toBe(0);
    expect(load.stdout).toBe(`Loaded image: ${base}\n`);
    const r = await box.run(["run", "--rm", base, "cat", "/etc/os-release"]);
    expect(r.stdout).toContain("minibox busybox");

    const multi = path.join(scratch, "multi.tar");
    const multiRef = `${anon}/${fx.multi.repo}:latest`;
    await skopeo([
      "copy",
      "--all",
      "--src-tls-verify=false",
      `docker://${multiRef}`,
      `oci-archive:${multi}:latest`,
    ]);
    const loadMulti = await other.run(["load", "-i", multi]);
    expect(loadMulti.code, loadMulti.stderr).toBe(0);
    const amd64 = fx.multi.manifests.find((m) => m.architecture === "amd64");
    // ref.name "latest" names no repository: the image comes in untagged, as in Docker.
    expect(loadMulti.stdout).toBe(`Loaded image ID: ${amd64?.configDigest}\n`);
  });
});

describe("export", () => {
  test("a container's changes on top of its image, owners as inside: export → import → run", async () => {
    await pull(box, layered);
    const made = await box.run([
      "run",
      "--name",
      "changed",
      layered,
      "sh",
      "-c",
      "echo new > /new.txt && chown 1000:50 /new.txt && rm /etc/os-release && mkdir -p /opt/made",
    ]);
    expect(made.code, made.stderr).toBe(0);
    const file = path.join(scratch, "export.tar");
    const exp = await box.run(["export", "-o", file, "changed"]);
    expect(exp.code, exp.stderr).toBe(0);
    expect(statSync(file).size).toBeGreaterThan(fx.layered.bigFile.size);

    const imp = await other.run(["import", file, "exported:1"]);
    expect(imp.code, imp.stderr).toBe(0);
    const r = await other.run([
      "run",
      "--rm",
      "exported:1",
      "sh",
      "-c",
      `cat /new.txt; stat -c '%u:%g' /new.txt /home/app; ls /etc/os-release ${fx.layered.expectAbsent.join(" ")} 2>&1; sha256sum ${fx.layered.bigFile.path}; test -d /opt/made && echo made`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toBe("new");
    expect(lines[1]).toBe("1000:50");
    expect(lines[2]).toBe("1000:1000");
    expect(r.stdout).toMatch(/\/etc\/os-release.*No such file/);
    for (const p of fx.layered.expectAbsent)
      expect(r.stdout).toMatch(new RegExp(`${p}.*No such file`));
    expect(r.stdout).toContain(fx.layered.bigFile.sha256);
    expect(r.stdout).toContain("made\n");

    const missing = await box.run(["export", "-o", file, "nosuch"]);
    expect(oneLineError(missing)).toMatch(/no such container: nosuch/);
    expect((await box.run(["rm", "changed"])).code).toBe(0);
  });
});
