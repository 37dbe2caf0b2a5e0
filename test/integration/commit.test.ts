// `diff` and `commit` (issue 14): a container adds, changes and deletes
// files; `diff` lists exactly those changes as Docker's A/C/D lines; `commit`
// makes an image of them that `run` sees, with the -c changes, the -m message
// in `history`, and owners as the container saw them (its upper directory
// holds ids shifted into its user namespace's range).
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  oneLineError,
  pullInto,
  removeContainers,
  type Sandbox,
  sandbox,
} from "../support/minibox.js";
import { testEnv } from "../support/testenv.js";

const IMAGE = `${testEnv().registries.anon}/fixtures/base`;

/**
 * Adds /added (owned by app, 1000:1000), changes /etc/os-release, deletes
 * /etc/group, replaces /home/app (app's) by a new directory of root's, which
 * overlayfs marks opaque.
 */
const CHANGES =
  "echo new > /added && chown 1000:1000 /added && echo changed > /etc/os-release && rm /etc/group && rm -r /home/app && mkdir /home/app";

let box: Sandbox;
beforeAll(async () => {
  box = sandbox();
  await pullInto(box, IMAGE);
  const run = await box.run([
    "run",
    "--network",
    "none",
    "--name",
    "changer",
    IMAGE,
    "sh",
    "-c",
    CHANGES,
  ]);
  expect(run.code, run.stderr).toBe(0);
});
afterAll(async () => {
  await removeContainers(box);
  box.cleanup();
});

async function ok(args: string[]): Promise<string> {
  const r = await box.run(args);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

async function imageIds(): Promise<string[]> {
  return (await ok(["images", "-aq", "--no-trunc"])).trim().split("\n").filter(Boolean).sort();
}

describe("diff", () => {
  test("lists exactly what the container added, changed and deleted, as Docker does", async () => {
    expect(await ok(["diff", "changer"])).toBe(
      [
        "A /added",
        "C /etc",
        "D /etc/group",
        "C /etc/os-release",
        "C /home",
        // Docker's word for an opaque directory: the old one was deleted.
        "D /home/app",
        "",
      ].join("\n"),
    );
  });

  test("works on a running container (`container diff`); commit of it too, which leaves it running", async () => {
    await ok([
      "run",
      "-d",
      "--name",
      "live",
      IMAGE,
      "sh",
      "-c",
      "mkdir -p /tmp/x/y && touch /tmp/x/y/z && sleep 300",
    ]);
    // The change is made before sleep starts; wait until it is there.
    let out = "";
    for (let i = 0; i < 100 && !out.includes("/tmp/x/y/z"); i++) {
      out = await ok(["container", "diff", "live"]);
      if (!out.includes("/tmp/x/y/z")) await new Promise((r) => setTimeout(r, 100));
    }
    expect(out).toBe(["C /tmp", "A /tmp/x", "A /tmp/x/y", "A /tmp/x/y/z", ""].join("\n"));
    expect((await ok(["commit", "live", "live:1"])).trim()).toMatch(/^sha256:/);
    expect(await ok(["inspect", "-f", "{{.State.Running}}", "live"])).toBe("true\n");
    const seen = await ok(["run", "--rm", "--network", "none", "live:1", "ls", "/tmp/x/y"]);
    expect(seen).toBe("z\n");
    await ok(["rm", "-f", "live"]);
  });
});

describe("commit", () => {
  let id: string;

  beforeAll(async () => {
    const out = await ok([
      "commit",
      "-a",
      "Jane <jane@example.com>",
      "-c",
      'CMD ["cat","/added"]',
      "-c",
      "ENV GREETING=hello",
      "-m",
      "added a file",
      "changer",
      "img:1",
    ]);
    id = out.trim();
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  test("run of the new image sees the change and runs the new CMD", async () => {
    expect(await ok(["run", "--rm", "--network", "none", "img:1"])).toBe("new\n");
    const seen = await ok([
      "run",
      "--rm",
      "--network",
      "none",
      "img:1",
      "sh",
      "-c",
      "cat /etc/os-release; test -e /etc/group && echo group-still-there; stat -c %u:%g /added /home/app; echo $GREETING",
    ]);
    expect(seen).toBe("changed\n1000:1000\n0:0\nhello\n");
  });

  test("history shows the commit on top, with its message", async () => {
    const lines = (await ok(["history", "--no-trunc", "img:1"])).split("\n");
    expect(lines[1]).toContain(id);
    expect(lines[1]).toMatch(/added a file\s*$/);
    // Docker's created_by for a commit: the container's command.
    expect(lines[1]).toContain(`sh -c ${CHANGES}`);
  });

  test("inspect shows the new config, author and one more layer", async () => {
    const [image] = JSON.parse(await ok(["inspect", "img:1"]));
    const [base] = JSON.parse(await ok(["inspect", IMAGE]));
    expect(image.Id).toBe(id);
    expect(image.Config.Cmd).toEqual(["cat", "/added"]);
    expect(image.Config.Env).toContain("GREETING=hello");
    expect(image.Config.Env.some((e: string) => e.startsWith("HOSTNAME="))).toBe(false);
    expect(image.Author).toBe("Jane <jane@example.com>");
    expect(image.RootFS.Layers).toHaveLength(base.RootFS.Layers.length + 1);
  });

  test("without a repository: a dangling image", async () => {
    const before = await imageIds();
    const out = (await ok(["commit", "changer"])).trim();
    expect(await imageIds()).toEqual([...before, out].sort());
    const row = (await ok(["images", "--no-trunc"])).split("\n").find((l) => l.includes(out));
    expect(row).toMatch(/^<none>\s+<none>\s+sha256:/);
  });
});

describe("bad input: one line, exit 1, no image made", () => {
  test.each([
    [["commit", "no-such-container", "x:1"], /no such container: no-such-container/],
    [["commit", "-c", "RUN echo hi", "changer", "x:1"], /run is not a valid change command/],
    [["commit", "-c", "CMD", "changer", "x:1"], /CMD/],
    [["commit", "changer", "Bad:Name"], /invalid reference format/],
    [["diff", "no-such-container"], /no such container: no-such-container/],
  ])("%j", async (args, message) => {
    const before = await imageIds();
    const r = await box.run(args);
    expect(r.code).toBe(1);
    expect(oneLineError(r)).toMatch(message);
    expect(await imageIds()).toEqual(before);
  });
});
