// `minibox cp` (docker cp): both ways, files and directories, `-` as a tar
// stream, on stopped and running containers; paths inside the container are
// resolved inside it, never on the host (CVE-2018-15664, CVE-2019-14271);
// ownership through the container's user namespace.
import { spawnSync } from "node:child_process";
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import tar from "tar-stream";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  MINIBOX_JS,
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
let scratch: string;
beforeAll(async () => {
  box = sandbox();
  scratch = mkdtempSync(path.join(tmpdir(), "minibox-cp-"));
  await pullInto(box, IMAGE);
});
afterAll(async () => {
  await removeContainers(box);
  box.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

async function ok(args: string[], input?: string) {
  const r = await box.run(args, input === undefined ? undefined : { input });
  expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/**
 * A stopped container whose filesystem `script` prepared. Started again,
 * it runs /check (put there by inContainer) instead: a look at what a
 * container sees in its overlay after a copy into its upper directory.
 */
async function stopped(name: string, script: string, flags: string[] = []) {
  const cmd = `if [ -e /check ]; then echo ==check==; sh /check; rm /check; else ${script}; fi`;
  await ok(["run", "--name", name, "--network", "none", ...flags, IMAGE, "sh", "-c", cmd]);
}

/** A running container (sleeping) whose filesystem `script` prepared. */
async function running(name: string, script: string, flags: string[] = []) {
  await ok([
    "run",
    "-d",
    "--name",
    name,
    "--network",
    "none",
    ...flags,
    IMAGE,
    "sh",
    "-c",
    `${script} && touch /ready && exec sleep 1000`,
  ]);
  for (let i = 0; i < 100; i++) {
    if ((await box.run(["exec", name, "test", "-e", "/ready"])).code === 0) return;
  }
  throw new Error(`${name} never became ready`);
}

function local(...parts: string[]) {
  return path.join(scratch, ...parts);
}

/** `minibox cp` with a binary stdin or stdout (the `-` forms). */
function cpRaw(args: string[], input?: Buffer) {
  return spawnSync(
    process.execPath,
    [MINIBOX_JS, "--root", box.root, "--config", box.config, "cp", ...args],
    {
      input,
      maxBuffer: 64 * 1024 * 1024,
    },
  );
}

async function tarNames(buf: Buffer): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const extract = tar.extract();
  const done = (async () => {
    for await (const e of extract) {
      const chunks: Buffer[] = [];
      for await (const c of e) chunks.push(c as Buffer);
      out.set(e.header.name, Buffer.concat(chunks).toString());
    }
  })();
  extract.end(buf);
  await done;
  return out;
}

describe.each([
  ["stopped", stopped],
  ["running", running],
])("a %s container", (kind, make) => {
  const c = `cp-${kind}`;
  beforeAll(async () => {
    await make(
      c,
      "mkdir -p /data/sub && echo one > /data/a && echo two > /data/sub/b && chown 1234:2345 /data/a",
    );
  });

  test("a file and a directory out of it, by Docker's rules", async () => {
    await ok(["cp", `${c}:/data/a`, local(`${kind}-a`)]);
    expect(readFileSync(local(`${kind}-a`), "utf8")).toBe("one\n");
    // Owners: the copier's without -a, the container's view with it.
    expect(statSync(local(`${kind}-a`)).uid).toBe(0);
    await ok(["cp", "-a", `${c}:/data/a`, local(`${kind}-a-archive`)]);
    expect(statSync(local(`${kind}-a-archive`)).uid).toBe(1234);
    expect(statSync(local(`${kind}-a-archive`)).gid).toBe(2345);

    // A directory to a new name: created with its contents.
    await ok(["cp", `${c}:/data`, local(`${kind}-d`)]);
    expect(readFileSync(local(`${kind}-d`, "sub", "b"), "utf8")).toBe("two\n");
    // Into an existing directory: under its own name; with "/.": its contents.
    mkdirSync(local(`${kind}-into`));
    await ok(["cp", `${c}:/data`, local(`${kind}-into`)]);
    expect(readFileSync(local(`${kind}-into`, "data", "a"), "utf8")).toBe("one\n");
    mkdirSync(local(`${kind}-contents`));
    await ok(["cp", `${c}:/data/.`, local(`${kind}-contents`)]);
    expect(readFileSync(local(`${kind}-contents`, "sub", "b"), "utf8")).toBe("two\n");
  });

  test("a file and a directory into it, owned by its root (stat inside: 0) unless -a", async () => {
    writeFileSync(local(`${kind}-in`), "hello\n");
    mkdirSync(local(`${kind}-indir`, "deep"), { recursive: true });
    writeFileSync(local(`${kind}-indir`, "deep", "f"), "deep\n");
    await ok(["cp", local(`${kind}-in`), `${c}:/data/in`]);
    await ok(["cp", local(`${kind}-in`), `${c}:/data/sub/`]); // into a directory: keeps its name
    await ok(["cp", local(`${kind}-indir`), `${c}:/newdir`]);
    await ok(["cp", local(`${kind}-indir`), `${c}:/data`]);
    const check = [
      `cat /data/in /data/sub/${kind}-in /newdir/deep/f /data/${kind}-indir/deep/f`,
      "stat -c %u:%g /data/in /newdir/deep/f /newdir",
    ].join(" && ");
    const out = await inContainer(c, check);
    expect(out).toBe("hello\nhello\ndeep\ndeep\n0:0\n0:0\n0:0\n");
  });

  test("- : a tar stream out of it and into it", async () => {
    const out = cpRaw([`${c}:/data/sub`, "-"]);
    expect(out.status, out.stderr.toString()).toBe(0);
    const names = await tarNames(out.stdout);
    expect(names.get("sub/b")).toBe("two\n");
    expect(names.has("sub/")).toBe(true);

    const pack = tar.pack();
    pack.entry({ name: "streamed/", type: "directory", mode: 0o755 });
    pack.entry({ name: "streamed/s", mode: 0o644 }, "from stdin\n");
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of pack) chunks.push(chunk as Buffer);
    const r = cpRaw(["-", `${c}:/data`], Buffer.concat(chunks));
    expect(r.status, r.stderr.toString()).toBe(0);
    expect(await inContainer(c, "cat /data/streamed/s")).toBe("from stdin\n");
  });

  test("CVE-2018-15664/CVE-2019-14271: a symlink to /etc/shadow copies the container's, never the host's", async () => {
    const before = { text: readFileSync("/etc/shadow"), mtime: statSync("/etc/shadow").mtimeMs };
    const name = `${c}-links`;
    await make(
      name,
      "echo container-shadow > /etc/shadow && ln -s /etc/shadow /leak && ln -s ../../../etc /up && ln -s /etc/shadow /victim",
    );
    // Out: the link itself; with -L its target, resolved in the container.
    await ok(["cp", `${name}:/leak`, local(`${kind}-leak`)]);
    expect(lstatSync(local(`${kind}-leak`)).isSymbolicLink()).toBe(true);
    expect(readlinkSync(local(`${kind}-leak`))).toBe("/etc/shadow");
    await ok(["cp", "-L", `${name}:/leak`, local(`${kind}-leak-L`)]);
    expect(readFileSync(local(`${kind}-leak-L`), "utf8")).toBe("container-shadow\n");
    // A directory link on the way, climbing with "..": still the container's /etc.
    await ok(["cp", `${name}:/up/shadow`, local(`${kind}-up`)]);
    expect(readFileSync(local(`${kind}-up`), "utf8")).toBe("container-shadow\n");

    // In: writing through the links lands inside the container.
    writeFileSync(local(`${kind}-payload`), "pwned\n");
    await ok(["cp", local(`${kind}-payload`), `${name}:/victim`]);
    await ok(["cp", local(`${kind}-payload`), `${name}:/up/shadow`]);
    await ok(["cp", local(`${kind}-payload`), `${name}:/up/`]);
    expect(await inContainer(name, `cat /etc/shadow /etc/${kind}-payload`)).toBe("pwned\npwned\n");

    expect(readFileSync("/etc/shadow")).toEqual(before.text);
    expect(statSync("/etc/shadow").mtimeMs).toBe(before.mtime);
    expect(lstatSync(`/etc/${kind}-payload`, { throwIfNoEntry: false })).toBeUndefined();
  });

  test("bad input: a missing path is Docker's error, exit 1, nothing written", async () => {
    const r = await box.run(["cp", `${c}:/nope`, local(`${kind}-nope`)]);
    expect(r.code).toBe(1);
    expect(oneLineError(r)).toBe(`minibox: Could not find the file /nope in container ${c}`);
    expect(lstatSync(local(`${kind}-nope`), { throwIfNoEntry: false })).toBeUndefined();
    const r2 = await box.run(["cp", local(`${kind}-in`), `${c}:/no/such/dir`]);
    expect(r2.code).toBe(1);
    expect(oneLineError(r2)).toContain("Could not find the file /no/such/dir in container");
  });
});

test("a stopped container: what it deleted from the image is replaced, not merged back (whiteouts, opaque directories)", async () => {
  await stopped("cp-whiteouts", "rm /etc/os-release && rm -rf /home");
  writeFileSync(local("os-release"), "NAME=copied\n");
  mkdirSync(local("home", "new"), { recursive: true });
  await ok(["cp", local("os-release"), "cp-whiteouts:/etc/os-release"]);
  await ok(["cp", local("home"), "cp-whiteouts:/home"]);
  // The image's /home/app stays deleted: only what was copied is there.
  expect(await inContainer("cp-whiteouts", "cat /etc/os-release && ls /home")).toBe(
    "NAME=copied\nnew\n",
  );
});

test("a running container: copied through its volume, as Docker does", async () => {
  const vol = `cp-vol-${process.pid}`;
  await running("cp-volume", "true", ["-v", `${vol}:/vol`]);
  try {
    writeFileSync(local("to-volume"), "in the volume\n");
    await ok(["cp", local("to-volume"), "cp-volume:/vol/"]);
    expect(await inContainer("cp-volume", "cat /vol/to-volume && stat -c %u /vol/to-volume")).toBe(
      "in the volume\n0\n",
    );
    await ok(["exec", "cp-volume", "sh", "-c", "echo from the volume > /vol/out"]);
    await ok(["cp", "cp-volume:/vol/out", local("from-volume")]);
    expect(readFileSync(local("from-volume"), "utf8")).toBe("from the volume\n");
  } finally {
    await box.run(["rm", "-f", "cp-volume"]);
    await box.run(["volume", "rm", vol]);
  }
});

test.each([
  ["idmapped", "0"],
  ["bound as is, owners shifted (MINIBOX_NO_IDMAP=1)", "1"],
])(
  "a stopped container: its volumes and bind mounts through their host directories (%s); read-only and tmpfs refused",
  async (_kind, noIdmap) => {
    process.env.MINIBOX_NO_IDMAP = noIdmap;
    const vol = `cp-stopvol-${noIdmap}-${process.pid}`;
    rmSync(local("bind"), { recursive: true, force: true });
    rmSync(local("bind-ro"), { recursive: true, force: true });
    mkdirSync(local("bind"));
    mkdirSync(local("bind-ro"));
    const flags = [
      "-v",
      `${vol}:/vol`,
      "-v",
      `${local("bind")}:/bind`,
      "-v",
      `${local("bind-ro")}:/ro:ro`,
    ];
    try {
      await stopped(
        "cp-stopvol",
        "echo made in the volume > /vol/made && mkdir /vol/sub && ln -s /vol/made /link",
        [...flags, "--tmpfs", "/scratch"],
      );
      // Out of the volume, also through a link in the container's own tree that points into it.
      await ok(["cp", "cp-stopvol:/vol/made", local("made")]);
      expect(readFileSync(local("made"), "utf8")).toBe("made in the volume\n");
      await ok(["cp", "-L", "cp-stopvol:/link", local("made-via-link")]);
      expect(readFileSync(local("made-via-link"), "utf8")).toBe("made in the volume\n");
      // Into the volume and the bind mount: there once it runs, owned by its root.
      writeFileSync(local("to-volume"), "copied while stopped\n");
      await ok(["cp", local("to-volume"), "cp-stopvol:/vol/sub/"]);
      await ok(["cp", local("to-volume"), "cp-stopvol:/bind/x"]);
      expect(readFileSync(local("bind", "x"), "utf8")).toBe("copied while stopped\n");
      for (const [dest, message] of [
        ["/ro/x", "is in its read-only mount /ro"],
        ["/scratch/x", "is in its mount /scratch, which is there only while it runs"],
      ]) {
        const refused = await box.run(["cp", local("to-volume"), `cp-stopvol:${dest}`]);
        expect(refused.code).toBe(1);
        expect(oneLineError(refused)).toContain(message);
      }
      expect(readdirSync(local("bind-ro"))).toEqual([]);
      expect(
        await inContainer(
          "cp-stopvol",
          "cat /vol/sub/to-volume && stat -c %u:%g /vol/sub/to-volume /bind/x",
        ),
      ).toBe("copied while stopped\n0:0\n0:0\n");
      // Owners on disk: the container's own ids in an idmapped volume, host ids (its root's) otherwise.
      const volumeDir = (await ok(["volume", "inspect", "-f", "{{.Mountpoint}}", vol])).trim();
      const madeByRoot = statSync(path.join(volumeDir, "made")).uid;
      expect(madeByRoot > 0).toBe(noIdmap === "1");
      expect(statSync(path.join(volumeDir, "sub", "to-volume")).uid).toBe(madeByRoot);
      expect(statSync(local("bind", "x")).uid).toBe(madeByRoot);
    } finally {
      delete process.env.MINIBOX_NO_IDMAP;
      await box.run(["rm", "-f", "cp-stopvol"]);
      await box.run(["volume", "rm", vol]);
    }
  },
);

test("CVE-2019-14271 (tar-slip): a tar on stdin cannot write through a link it makes, nor climb out with ..", async () => {
  await running("cp-slip", "true");
  const before = { text: readFileSync("/etc/shadow"), mtime: statSync("/etc/shadow").mtimeMs };
  const attempt = async (entries: (p: tar.Pack) => void) => {
    const pack = tar.pack();
    entries(pack);
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of pack) chunks.push(chunk as Buffer);
    return cpRaw(["-", "cp-slip:/tmp"], Buffer.concat(chunks));
  };
  const viaLink = await attempt((p) => {
    p.entry({ name: "hostetc", type: "symlink", linkname: "/../../../../etc" });
    p.entry({ name: "hostetc/shadow", mode: 0o644 }, "pwned\n");
  });
  expect(viaLink.status).toBe(1);
  expect(viaLink.stderr.toString()).toMatch(
    /^minibox: cannot write \/tmp\/hostetc\/shadow in container cp-slip: a (symlink|non-directory) on the way/,
  );
  const climbing = await attempt((p) => {
    p.entry({ name: "../../../../../../etc/shadow", mode: 0o644 }, "pwned\n");
  });
  expect(climbing.status).toBe(1);
  expect(climbing.stderr.toString()).toContain("leaves the destination");
  expect(readFileSync("/etc/shadow")).toEqual(before.text);
  expect(statSync("/etc/shadow").mtimeMs).toBe(before.mtime);
  expect(await inContainer("cp-slip", "cat /etc/shadow 2>&1; true")).not.toContain("pwned");
});

test("CVE-2018-15664: a container swapping its directory for a symlink to the host while cp runs, both ways", async () => {
  // The race docker cp lost: /swap keeps being exchanged for a link to a host
  // directory holding a file of the same name and size as the container's.
  const hostDir = mkdtempSync(path.join(tmpdir(), "minibox-cp-hostdir-"));
  try {
    const secret = "HOST-SECRET-0123456789";
    const mine = "CONTAINER-OWN-01234567";
    writeFileSync(path.join(hostDir, "own"), secret);
    const before = statSync(path.join(hostDir, "own")).mtimeMs;
    await running(
      "cp-swapper",
      `mkdir /swap && printf %s ${mine} > /swap/own && { (while :; do mv /swap /swap.d; ln -s ${hostDir} /swap; usleep 2000; rm /swap; mv /swap.d /swap; usleep 20000; done) & }`,
    );
    writeFileSync(local("race-payload"), "pwned\n");
    for (let i = 0; i < 20; i++) {
      const out = await box.run(["cp", "cp-swapper:/swap/own", local(`race-${i}`)]);
      if (out.code === 0) {
        expect(readFileSync(local(`race-${i}`), "utf8")).toBe(mine);
      } else {
        // Refused when it caught the link: "Could not find…" or "…changed while it was copied".
        expect(oneLineError(out)).toMatch(
          /^minibox: (Could not find the file|.* changed while it was copied)/,
        );
      }
      await box.run(["cp", local("race-payload"), "cp-swapper:/swap/"]);
    }
    expect(readFileSync(path.join(hostDir, "own"), "utf8")).toBe(secret);
    expect(statSync(path.join(hostDir, "own")).mtimeMs).toBe(before);
    expect(spawnSync("ls", [hostDir]).stdout.toString()).toBe("own\n");
  } finally {
    await box.run(["rm", "-f", "cp-swapper"]);
    rmSync(hostDir, { recursive: true, force: true });
  }
});

test("bad input: no container named, or two", async () => {
  const none = await box.run(["cp", "/etc/hostname", local("x")]);
  expect(none.code).toBe(1);
  expect(oneLineError(none)).toContain("must specify at least one container source");
  const two = await box.run(["cp", "a:/x", "b:/y"]);
  expect(two.code).toBe(1);
  expect(oneLineError(two)).toBe("minibox: copying between containers is not supported");
});

/** What `script` prints in the container: exec while it runs; started again (see `stopped`) when stopped. */
async function inContainer(name: string, script: string): Promise<string> {
  const status = (await ok(["inspect", "-f", "{{.State.Status}}", name])).trim();
  if (status === "running") return ok(["exec", name, "sh", "-c", script]);
  writeFileSync(local("check"), `${script}\n`);
  await ok(["cp", local("check"), `${name}:/check`]);
  await ok(["start", name]);
  await ok(["wait", name]);
  const logs = await ok(["logs", name]);
  return logs.slice(logs.lastIndexOf("==check==\n") + "==check==\n".length);
}
