// Volumes (the talk's scenario 13): bind mounts, named and anonymous volumes,
// the volume commands — on the real kernel, with user namespaces on (the
// default) and off, against the busybox fixture.
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  oneLineError,
  pullInto,
  removeContainers,
  type Sandbox,
  sandbox,
} from "../support/minibox.js";
import { testEnv } from "../support/testenv.js";

const env = testEnv();
const IMAGE = `${env.registries.anon}/fixtures/base`;

let box: Sandbox;
let dir: string;
beforeAll(async () => {
  box = sandbox();
  dir = mkdtempSync(path.join(tmpdir(), "minibox-volumes-"));
  await pullInto(box, IMAGE);
});
afterAll(async () => {
  await removeContainers(box);
  box.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function ok(args: string[]): Promise<string> {
  const r = await box.run(args);
  expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

function hostDir(name: string, files: Record<string, string> = {}): string {
  const d = path.join(dir, name);
  mkdirSync(d, { recursive: true });
  for (const [f, content] of Object.entries(files)) writeFileSync(path.join(d, f), content);
  return d;
}

const volumeNames = async () =>
  (await ok(["volume", "ls", "-q"])).trim().split("\n").filter(Boolean);

describe("bind mounts", () => {
  test(":ro is enforced by the kernel; the files are readable", async () => {
    const src = hostDir("ro", { "greeting.txt": "Hello from the host\n" });
    const r = await box.run([
      "run",
      "--rm",
      "-v",
      `${src}:/etc/files:ro`,
      IMAGE,
      "sh",
      "-c",
      "cat /etc/files/greeting.txt; touch /etc/files/new",
    ]);
    expect(r.stdout).toBe("Hello from the host\n");
    expect(r.stderr).toMatch(/Read-only file system/);
    expect(r.code).not.toBe(0);
    expect(readdirSync(src)).toEqual(["greeting.txt"]);
  });

  test("read-write: what the container's root writes is root's on the host (idmapped)", async () => {
    const src = hostDir("rw");
    statSync(src); // exists, owned by root
    const out = await ok([
      "run",
      "--rm",
      "-v",
      `${src}:/data`,
      IMAGE,
      "sh",
      "-c",
      "echo written > /data/out.txt; stat -c '%u:%g' /data",
    ]);
    // Host uid 0 is the container's root, both ways.
    expect(out).toBe("0:0\n");
    expect(readFileSync(path.join(src, "out.txt"), "utf8")).toBe("written\n");
    const st = statSync(path.join(src, "out.txt"));
    expect([st.uid, st.gid]).toEqual([0, 0]);
  });

  test("-v creates a missing host directory; a file can be bound too", async () => {
    const missing = path.join(dir, "made", "by", "run");
    const file = path.join(hostDir("file", { motd: "a file\n" }), "motd");
    const out = await ok([
      "run",
      "--rm",
      "-v",
      `${missing}:/m`,
      "-v",
      `${file}:/etc/motd:ro`,
      IMAGE,
      "cat",
      "/etc/motd",
    ]);
    expect(out).toBe("a file\n");
    expect(statSync(missing).isDirectory()).toBe(true);
  });

  test("--mount type=bind, readonly; its source must exist", async () => {
    const src = hostDir("mount", { "x.txt": "x\n" });
    const r = await box.run([
      "run",
      "--rm",
      "--mount",
      `type=bind,source=${src},target=/x,readonly`,
      IMAGE,
      "sh",
      "-c",
      "cat /x/x.txt; echo y > /x/y.txt",
    ]);
    expect(r.stdout).toBe("x\n");
    expect(r.stderr).toMatch(/Read-only file system/);
    const bad = await box.run([
      "run",
      "--rm",
      "--mount",
      `type=bind,source=${dir}/nope,target=/x`,
      IMAGE,
      "true",
    ]);
    expect(bad.code).toBe(125);
    expect(oneLineError(bad)).toMatch(/bind source path does not exist: .*\/nope/);
  });

  test("the talk's scenario: httpd serves a read-only bind mount; exec sees it", async () => {
    const src = hostDir("site", { "greeting.txt": "Hello, volumes!\n" });
    await ok([
      "run",
      "-d",
      "--name",
      "web",
      "-v",
      `${src}:/etc/files:ro`,
      IMAGE,
      "httpd",
      "-f",
      "-p",
      "8080",
      "-h",
      "/etc/files",
    ]);
    let body = "";
    for (let i = 0; i < 50 && body === ""; i++) {
      const r = await box.run([
        "exec",
        "web",
        "wget",
        "-qO-",
        "http://127.0.0.1:8080/greeting.txt",
      ]);
      body = r.code === 0 ? r.stdout : "";
      if (!body) await new Promise((res) => setTimeout(res, 100));
    }
    expect(body).toBe("Hello, volumes!\n");
    const inspect = JSON.parse(await ok(["inspect", "web"]))[0];
    expect(inspect.Mounts).toEqual([
      {
        Type: "bind",
        Source: src,
        Destination: "/etc/files",
        Mode: "ro",
        RW: false,
        Propagation: "rprivate",
      },
    ]);
    expect(inspect.HostConfig.Binds).toEqual([`${src}:/etc/files:ro`]);
    await ok(["rm", "-f", "web"]);
  });

  test("--userns=host: plain binds, the same view", async () => {
    const src = hostDir("hostns", { "a.txt": "a\n" });
    const out = await ok([
      "run",
      "--rm",
      "--userns=host",
      "-v",
      `${src}:/d`,
      "-v",
      "hostns-vol:/v",
      IMAGE,
      "sh",
      "-c",
      "cat /d/a.txt; echo b > /d/b.txt; echo v > /v/v.txt; stat -c '%u' /d/b.txt",
    ]);
    expect(out).toBe("a\n0\n");
    expect(readFileSync(path.join(src, "b.txt"), "utf8")).toBe("b\n");
    // The same volume in a user-namespaced container: its files are root's there too.
    expect(
      await ok(["run", "--rm", "-v", "hostns-vol:/v", IMAGE, "stat", "-c", "%u %n", "/v/v.txt"]),
    ).toBe("0 /v/v.txt\n");
    await ok(["volume", "rm", "hostns-vol"]);
  });
});

describe("named volumes", () => {
  test("without idmapped mounts, a new volume is made in the container's id range", async () => {
    const noIdmap = { env: { ...process.env, MINIBOX_NO_IDMAP: "1" } };
    const r = await box.run(
      [
        "run",
        "--rm",
        "-v",
        "shifted:/etc",
        IMAGE,
        "sh",
        "-c",
        "echo w > /etc/new; stat -c '%u' /etc/passwd",
      ],
      noIdmap,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("0\n");
    const userns = JSON.parse(readFileSync(path.join(box.root, "userns.json"), "utf8"));
    const data = path.join(box.root, "volumes", "shifted", "_data");
    expect(statSync(path.join(data, "new")).uid).toBe(userns.uid.hostID);
    expect(statSync(path.join(data, "passwd")).uid).toBe(userns.uid.hostID);
    await ok(["volume", "rm", "shifted"]);
  });

  test("outlive their container and are seen by the next one", async () => {
    await ok([
      "run",
      "--rm",
      "-v",
      "http-server:/etc/files",
      IMAGE,
      "sh",
      "-c",
      "echo kept > /etc/files/note",
    ]);
    expect(await volumeNames()).toContain("http-server");
    expect(
      await ok(["run", "--rm", "-v", "http-server:/etc/files:ro", IMAGE, "cat", "/etc/files/note"]),
    ).toBe("kept\n");
    const [info] = JSON.parse(await ok(["volume", "inspect", "http-server"]));
    expect(info).toMatchObject({
      Driver: "local",
      Name: "http-server",
      Mountpoint: path.join(box.root, "volumes", "http-server", "_data"),
      Scope: "local",
      Labels: null,
      Options: null,
    });
    expect(Date.parse(info.CreatedAt)).toBeGreaterThan(Date.now() - 600_000);
    expect(readFileSync(path.join(info.Mountpoint, "note"), "utf8")).toBe("kept\n");
    expect(await ok(["volume", "rm", "http-server"])).toBe("http-server\n");
    expect(await volumeNames()).not.toContain("http-server");
  });

  test("a new volume starts with the image's content at its path, owners kept", async () => {
    const out = await ok([
      "run",
      "--rm",
      "-v",
      "etc-copy:/etc",
      IMAGE,
      "sh",
      "-c",
      "grep -c root /etc/passwd; stat -c '%u:%g %a' /etc/passwd",
    ]);
    expect(out).toMatch(/^[1-9]\d*\n0:0 644\n$/);
    const data = path.join(box.root, "volumes", "etc-copy", "_data");
    expect(statSync(path.join(data, "passwd")).uid).toBe(0);
    // Not copied again into a volume that has content.
    await ok(["run", "--rm", "-v", "etc-copy:/mnt", IMAGE, "sh", "-c", "rm /mnt/passwd"]);
    expect(
      await box.run(["run", "--rm", "-v", "etc-copy:/etc", IMAGE, "test", "-e", "/etc/passwd"]),
    ).toMatchObject({ code: 1 });
    await ok(["volume", "rm", "etc-copy"]);
  });

  test("volume create/ls/inspect/rm; rm refuses a volume in use, even by a stopped container", async () => {
    expect(await ok(["volume", "create", "--label", "team=web", "made"])).toBe("made\n");
    expect(await ok(["volume", "create", "made"])).toBe("made\n"); // exists: fine, as in Docker
    const ls = await ok(["volume", "ls"]);
    expect(ls.split("\n")[0]).toMatch(/^DRIVER\s+VOLUME NAME$/);
    expect(ls).toMatch(/^local\s+made$/m);
    expect(JSON.parse(await ok(["volume", "inspect", "made"]))[0].Labels).toEqual({ team: "web" });
    await ok(["run", "--name", "user", "-v", "made:/m", IMAGE, "true"]);
    expect(await ok(["volume", "ls", "-q", "--filter", "dangling=true"])).not.toMatch(/^made$/m);
    const refused = await box.run(["volume", "rm", "made"]);
    expect(refused.code).not.toBe(0);
    expect(oneLineError(refused)).toMatch(/remove made: volume is in use - \[[0-9a-f]{64}\]/);
    await ok(["rm", "user"]);
    expect(await ok(["volume", "ls", "-q", "--filter", "dangling=true"])).toMatch(/^made$/m);
    expect(await ok(["volume", "rm", "made"])).toBe("made\n");
    const missing = await box.run(["volume", "inspect", "made"]);
    expect(oneLineError(missing)).toMatch(/no such volume/);
    expect((await box.run(["volume", "rm", "-f", "made"])).code).toBe(0);
  });
});

describe("anonymous volumes", () => {
  test("-v /path: removed by --rm, kept otherwise until rm -v", async () => {
    const before = await volumeNames();
    await ok(["run", "--rm", "-v", "/scratch", IMAGE, "sh", "-c", "echo x > /scratch/x"]);
    expect(await volumeNames()).toEqual(before);

    await ok([
      "run",
      "--name",
      "keeper",
      "-v",
      "/scratch",
      IMAGE,
      "sh",
      "-c",
      "echo x > /scratch/x",
    ]);
    const [mount] = JSON.parse(await ok(["inspect", "keeper"]))[0].Mounts;
    expect(mount).toMatchObject({
      Type: "volume",
      Destination: "/scratch",
      Driver: "local",
      RW: true,
    });
    expect(mount.Name).toMatch(/^[0-9a-f]{64}$/);
    expect(mount.Source).toBe(path.join(box.root, "volumes", mount.Name, "_data"));
    await ok(["rm", "keeper"]);
    expect(await volumeNames()).toContain(mount.Name); // rm without -v keeps it (Docker)
    await ok(["run", "--name", "keeper2", "-v", "/scratch", IMAGE, "true"]);
    const anon2 = JSON.parse(await ok(["inspect", "keeper2"]))[0].Mounts[0].Name;
    await ok(["rm", "-v", "keeper2"]);
    expect(await volumeNames()).not.toContain(anon2);

    // prune: unused anonymous volumes only; -a: named ones too.
    await ok(["volume", "create", "named-survivor"]);
    const pruned = await ok(["volume", "prune", "-f"]);
    expect(pruned).toContain(`Deleted Volumes:\n${mount.Name}\n`);
    expect(pruned).toMatch(/Total reclaimed space: \d+(\.\d+)?k?B\n$/);
    expect(await volumeNames()).toContain("named-survivor");
    expect(await ok(["volume", "prune", "-a", "-f"])).toContain("named-survivor\n");
    expect(await volumeNames()).toEqual([]);
  });

  test("an image's VOLUME becomes an anonymous volume, filled from the image", async () => {
    const ctx = hostDir("volume-image", {
      Dockerfile: `FROM ${IMAGE}\nRUN mkdir -p /srv/data && echo seeded > /srv/data/seed\nVOLUME /srv/data\n`,
    });
    await ok(["build", "-q", "-t", "with-volume", ctx]);
    expect(await ok(["run", "--name", "vol-img", "with-volume", "cat", "/srv/data/seed"])).toBe(
      "seeded\n",
    );
    const [mount] = JSON.parse(await ok(["inspect", "vol-img"]))[0].Mounts;
    expect(mount).toMatchObject({ Type: "volume", Destination: "/srv/data" });
    expect(readFileSync(path.join(mount.Source, "seed"), "utf8")).toBe("seeded\n");
    await ok(["rm", "-v", "vol-img"]);
    expect(await volumeNames()).not.toContain(mount.Name);
    // A -v on the same path replaces the image's VOLUME.
    await ok(["run", "--rm", "-v", "instead:/srv/data", "with-volume", "true"]);
    expect(await volumeNames()).toEqual(["instead"]);
    await ok(["volume", "rm", "instead"]);
  });
});

describe("bad input: one clear line, nothing created", () => {
  test.each([
    [
      ["-v", "./data:/x"],
      /"\.\/data" includes invalid characters for a local volume name, only "\[a-zA-Z0-9\]\[a-zA-Z0-9_.-\]" are allowed\. If you intended to pass a host directory, use absolute path/,
    ],
    [["-v", "vol:relative"], /mount path must be absolute/],
    [["-v", "/a:/b:rx"], /invalid volume specification: '\/a:\/b:rx'/],
    [["-v", "vol:/"], /destination can't be '\/'/],
    [["-v", "one:/x", "-v", "two:/x"], /Duplicate mount point: \/x/],
    [["--mount", "type=npipe,target=/x"], /type 'npipe' is not supported/],
  ])("%j", async (flags, message) => {
    const before = await volumeNames();
    const containers = await ok(["ps", "-aq"]);
    const r = await box.run(["run", "--rm", ...flags, IMAGE, "true"]);
    expect(r.code).toBe(125);
    expect(oneLineError(r)).toMatch(message);
    expect(await volumeNames()).toEqual(before);
    expect(await ok(["ps", "-aq"])).toBe(containers);
  });

  test("a failed run leaves no new volume behind; --rm takes anonymous ones even on failure", async () => {
    const containers = await ok(["ps", "-aq"]);
    const r = await box.run([
      "run",
      "-v",
      "never:/x",
      "--mount",
      `type=bind,source=${dir}/nope,target=/y`,
      IMAGE,
      "true",
    ]);
    expect(oneLineError(r)).toMatch(/bind source path does not exist/);
    expect(await volumeNames()).toEqual([]);
    expect(await ok(["ps", "-aq"])).toBe(containers); // no container either
    const failed = await box.run(["run", "--rm", "-v", "/anon", IMAGE, "/no/such/program"]);
    expect(failed.code).toBe(127);
    expect(await volumeNames()).toEqual([]);
  });
});
