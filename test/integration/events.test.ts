// `minibox events`: what run, rm, stop, pull, tag and rmi journal, read back
// in Docker's shapes (docs.docker.com/reference/cli/docker/system/events/),
// with --since/--until windows, filters, and following the journal.
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
/** Docker's line: RFC 3339 time with nanoseconds, type, action, actor ID, (attributes). */
const LINE =
  /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) (\w+) (\w+) (\S+)(?: \((.*)\))?$/;

let box: Sandbox;
beforeAll(async () => {
  box = sandbox();
  await pullInto(box, IMAGE);
});
afterAll(async () => {
  await removeContainers(box);
  box.cleanup();
});

/** Now as a Unix timestamp with nanoseconds, the way a user passes one to --since. */
function unixNow(): string {
  return (Date.now() / 1000).toFixed(3);
}

async function ok(args: string[]): Promise<string> {
  const r = await box.run(args);
  expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

async function eventsIn(window: string[], ...more: string[]): Promise<string[]> {
  return (await ok(["events", ...window, ...more])).split("\n").filter(Boolean);
}

/** "type action" of each line (and the line must have Docker's shape). */
function actions(lines: string[]): string[] {
  return lines.map((l) => {
    const m = LINE.exec(l);
    if (!m) throw new Error(`not Docker's event line: ${l}`);
    return `${m[2]} ${m[3]}`;
  });
}

describe("events", () => {
  let window: string[] = [];
  let id = "";
  let imageId = "";

  test("run, rm, pull, tag and rmi: exactly their events, in order, in Docker's line shape", async () => {
    const since = unixNow();
    await ok(["pull", "-q", IMAGE]);
    const run = await box.run([
      "run",
      "--name",
      "ev-one",
      "--label",
      "tier=demo",
      IMAGE,
      "sh",
      "-c",
      "exit 3",
    ]);
    expect(run.code).toBe(3);
    id = (await ok(["ps", "-aq", "--no-trunc", "--filter", "name=ev-one"])).trim();
    await ok(["rm", "ev-one"]);
    await ok(["tag", IMAGE, "ev-tag:1"]);
    imageId = (await ok(["image", "inspect", "--format", "{{.Id}}", "ev-tag:1"])).trim();
    await ok(["rmi", "ev-tag:1"]);
    window = ["--since", since, "--until", unixNow()];

    const lines = await eventsIn(window);
    expect(actions(lines)).toEqual([
      "image pull",
      "container create",
      "container start",
      "container die",
      "container destroy",
      "image tag",
      "image untag",
    ]);
    const tail = (l: string | undefined) => l?.replace(/^\S+ /, "");
    // The fixture's labels: Docker adds an image's labels to its events and its containers'.
    const labels = "org.minibox.test=true, org.opencontainers.image.title=minibox-fixture-base";
    expect(tail(lines[0])).toBe(`image pull ${IMAGE}:latest (name=${IMAGE}, ${labels})`);
    const attrs = `image=${IMAGE}, name=ev-one, ${labels}, tier=demo`;
    expect(tail(lines[1])).toBe(`container create ${id} (${attrs})`);
    expect(tail(lines[2])).toBe(`container start ${id} (${attrs})`);
    expect(tail(lines[3])).toMatch(
      new RegExp(`^container die ${id} \\(execDuration=\\d+, exitCode=3, ${attrs}\\)$`),
    );
    expect(tail(lines[4])).toBe(`container destroy ${id} (${attrs})`);
    expect(tail(lines[5])).toBe(`image tag ${imageId} (name=ev-tag:1, ${labels})`);
    expect(tail(lines[6])).toBe(`image untag ${imageId} (name=${imageId}, ${labels})`);
    // Times in order, within the window.
    const times = lines.map((l) => Date.parse(l.split(" ")[0] as string));
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  test("--format '{{json .}}' and json: Docker's fields, timeNano exact", async () => {
    for (const format of ["{{json .}}", "json"]) {
      const lines = await eventsIn(window, "--format", format, "--filter", "event=die");
      expect(lines).toHaveLength(1);
      const event = JSON.parse(lines[0] as string);
      expect(event).toMatchObject({
        status: "die",
        id,
        from: IMAGE,
        Type: "container",
        Action: "die",
        Actor: {
          ID: id,
          Attributes: { name: "ev-one", image: IMAGE, tier: "demo", exitCode: "3" },
        },
        scope: "local",
      });
      expect(Number.isInteger(event.time)).toBe(true);
      // A JS number would round it: the nanoseconds are read from the text.
      const nano = /"timeNano":(\d+)/.exec(lines[0] as string)?.[1] as string;
      expect(nano).toMatch(/^\d{19}$/);
      expect(BigInt(nano) / 1_000_000_000n).toBe(BigInt(event.time));
    }
    expect(
      await eventsIn(
        window,
        "--format",
        "{{.Type}}/{{.Action}}/{{.Actor.Attributes.name}}",
        "--filter",
        "type=image",
      ),
    ).toEqual([`image/pull/${IMAGE}`, "image/tag/ev-tag:1", `image/untag/${imageId}`]);
  });

  test("filters: type, event, container, image, label; same key alternatives, keys combined", async () => {
    expect(actions(await eventsIn(window, "--filter", "type=image"))).toEqual([
      "image pull",
      "image tag",
      "image untag",
    ]);
    expect(
      actions(
        await eventsIn(
          window,
          "--filter",
          "container=ev-one",
          "--filter",
          "event=start",
          "--filter",
          "event=die",
        ),
      ),
    ).toEqual(["container start", "container die"]);
    expect(
      actions(await eventsIn(window, "--filter", `container=${id.slice(0, 12)}`)),
    ).toHaveLength(4);
    expect(actions(await eventsIn(window, "--filter", "label=tier=demo"))).toEqual([
      "container create",
      "container start",
      "container die",
      "container destroy",
    ]);
    expect(await eventsIn(window, "--filter", "label=tier=other")).toEqual([]);
    // The image by name: the pull and the container's events (Docker's matchImage).
    expect(actions(await eventsIn(window, "--filter", `image=${IMAGE}`))).toEqual([
      "image pull",
      "container create",
      "container start",
      "container die",
      "container destroy",
    ]);
  });

  test("a detached container's die comes from its monitor's exit hook, with the exit code", async () => {
    const since = unixNow();
    await ok(["run", "-d", "--name", "ev-bg", IMAGE, "sh", "-c", "exit 7"]);
    // `wait` returns once the exit is recorded (by the hook, or by wait itself if the hook is late).
    expect((await ok(["wait", "ev-bg"])).trim()).toBe("7");
    const lines = await eventsIn(
      ["--since", since, "--until", unixNow()],
      "--filter",
      "container=ev-bg",
    );
    expect(actions(lines)).toEqual(["container create", "container start", "container die"]);
    expect(lines[2]).toMatch(
      / \(execDuration=\d+, exitCode=7, image=\S+, name=ev-bg, org\.minibox\.test=true, /,
    );
    await ok(["rm", "ev-bg"]);
  });

  test("stop journals Docker's sequence: kill 15, kill 9, die 137, stop", async () => {
    const since = unixNow();
    await ok(["run", "-d", "--name", "ev-stop", IMAGE, "sleep", "300"]);
    await ok(["stop", "-t", "0", "ev-stop"]);
    const lines = await eventsIn(
      ["--since", since, "--until", unixNow()],
      "--filter",
      "container=ev-stop",
    );
    expect(actions(lines)).toEqual([
      "container create",
      "container start",
      "container kill",
      "container kill",
      "container die",
      "container stop",
    ]);
    expect(lines[2]).toContain("signal=15");
    expect(lines[3]).toContain("signal=9");
    expect(lines[4]).toContain("exitCode=137");
    await ok(["rm", "ev-stop"]);
  });

  test("without --until it follows: an event appended after it started is printed; SIGTERM ends it", async () => {
    const since = unixNow();
    await ok(["volume", "create", "ev-before"]);
    const { child, done } = box.spawn(["events", "--since", since, "--filter", "type=volume"]);
    let seen = "";
    const waitFor = (text: string) =>
      new Promise<void>((resolve) => {
        if (seen.includes(text)) return resolve();
        const onData = (d: Buffer) => {
          seen += d;
          if (seen.includes(text)) {
            child.stdout?.off("data", onData);
            resolve();
          }
        };
        child.stdout?.on("data", onData);
      });
    try {
      // Its first read is done once the earlier event is out: the next one comes by following.
      await waitFor("volume create ev-before");
      await ok(["volume", "create", "ev-after"]);
      await waitFor("volume create ev-after");
    } finally {
      child.kill("SIGTERM");
    }
    const r = await done;
    expect(r.code).toBe(0);
    expect(actions(r.stdout.trim().split("\n"))).toEqual(["volume create", "volume create"]);
    expect(r.stdout).toMatch(/ volume create ev-after \(driver=local\)\n$/);
    await ok(["volume", "rm", "ev-before", "ev-after"]);
  });

  test("bad input: one line on stderr, exit 1, nothing printed", async () => {
    for (const args of [
      ["--since", "yesterday"],
      ["--until", "2024-13-45"],
      ["--filter", "colour=red"],
      ["--filter", "type=spaceship"],
      ["--format", "{{.Type"],
    ]) {
      const r = await box.run(["events", ...args]);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stdout).toBe("");
      oneLineError(r);
    }
    expect(oneLineError(await box.run(["events", "--since", "yesterday"]))).toMatch(
      /^minibox: invalid value for --since: "yesterday" is not a time or duration; use /,
    );
    expect(oneLineError(await box.run(["events", "--filter", "colour=red"]))).toMatch(
      /^minibox: invalid filter "colour=red"; use type=…/,
    );
  });
});
