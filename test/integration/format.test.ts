// --format, --filter, -q and --no-trunc on ps, images, history, inspect,
// volume ls, network ls and stats, against a real store; expected shapes
// written from Docker's documentation (header names, tabwriter spacing).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { oneLineError, type Sandbox, sandbox } from "../support/minibox.js";
import { testEnv } from "../support/testenv.js";

const env = testEnv();
const IMAGE = `${env.registries.anon}/fixtures/base`;

let box: Sandbox;
let contextDir: string;

async function ok(args: string[]): Promise<string> {
  const r = await box.run(args);
  expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

const lines = (text: string) => text.trimEnd().split("\n").filter(Boolean);

beforeAll(async () => {
  box = sandbox();
  await ok(["pull", "-q", IMAGE]);
  await ok(["tag", IMAGE, "demo/app:1.0"]);
  contextDir = mkdtempSync(path.join(tmpdir(), "minibox-fmtctx-"));
  writeFileSync(path.join(contextDir, "Dockerfile"), `FROM ${IMAGE}\nLABEL tier=web\n`);
  await ok(["build", "-q", "-t", "labeled:v1", contextDir]);
  writeFileSync(path.join(contextDir, "Dockerfile"), `FROM ${IMAGE}\nLABEL kind=orphan\n`);
  await ok(["build", "-q", contextDir]);
  // Oldest first: before/since filters compare creation times.
  await ok(["run", "--network", "none", "--name", "c-exit0", "--label", "tier=db", IMAGE, "true"]);
  const r = await box.run([
    "run",
    "--network",
    "none",
    "--name",
    "c-exit3",
    IMAGE,
    "sh",
    "-c",
    "exit 3",
  ]);
  expect(r.code).toBe(3);
  await ok([
    "run",
    "-d",
    "--network",
    "none",
    "--name",
    "c-up",
    "--label",
    "tier=web",
    IMAGE,
    "sleep",
    "300",
  ]);
  await ok(["volume", "create", "--label", "owner=fmt", "fmtvol"]);
});

afterAll(async () => {
  const ids = lines((await box.run(["ps", "-aq", "--no-trunc"])).stdout);
  if (ids.length) await box.run(["rm", "-f", ...ids]);
  await box.run(["volume", "rm", "fmtvol"]);
  rmSync(contextDir, { recursive: true, force: true });
  box.cleanup();
});

describe("ps", () => {
  test("--format 'table …': Docker's headers, columns aligned by its tabwriter", async () => {
    const out = await ok(["ps", "--format", 'table {{.Names}}\\t{{.Label "tier"}}\\t{{.State}}']);
    expect(out).toBe("NAMES     LABEL     STATE\nc-up      web       running\n");
  });

  test("a plain template, {{json .}} and --format json: one line per container", async () => {
    expect(await ok(["ps", "-a", "--format", "{{.Names}}: {{.Status}}"])).toMatch(
      /^c-up: Up .+\nc-exit3: Exited \(3\) .+ ago\nc-exit0: Exited \(0\) .+ ago\n$/,
    );
    const json = lines(await ok(["ps", "--format", "json"])).map((l) => JSON.parse(l));
    expect(json).toHaveLength(1);
    expect(Object.keys(json[0])).toEqual([
      "Command",
      "CreatedAt",
      "ID",
      "Image",
      "Labels",
      "LocalVolumes",
      "Mounts",
      "Names",
      "Networks",
      "Ports",
      "RunningFor",
      "Size",
      "State",
      "Status",
    ]);
    expect(json[0]).toMatchObject({
      Names: "c-up",
      Command: '"sleep 300"',
      // The image's labels too, sorted, as Docker joins them.
      Labels: "org.minibox.test=true,org.opencontainers.image.title=minibox-fixture-base,tier=web",
      State: "running",
    });
    expect(json[0].ID).toMatch(/^[0-9a-f]{12}$/);
    expect(json[0].CreatedAt).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC$/);
    expect(await ok(["ps", "--format", "{{json .Names}}"])).toBe('"c-up"\n');
    expect(await ok(["ps", "--format", "{{.Networks}} {{.Mounts}}|"])).toBe("none |\n");
    const full = await ok(["ps", "--no-trunc", "--format", "{{.ID}}"]);
    expect(full.trim()).toMatch(/^[0-9a-f]{64}$/);
  });

  test.each([
    [["status=exited"], ["c-exit3", "c-exit0"]],
    [["exited=3"], ["c-exit3"]],
    [
      ["status=running", "status=exited"],
      ["c-up", "c-exit3", "c-exit0"],
    ],
    [["label=tier"], ["c-up"]],
    [["label=tier=db", "status=exited"], ["c-exit0"]],
    [["name=^c-exit"], []],
    [["ancestor=demo/app:1.0"], ["c-up"]],
    [["ancestor=labeled:v1"], []],
    [["before=c-up"], ["c-exit3", "c-exit0"]],
    [["since=c-exit0"], ["c-up", "c-exit3"]],
  ])("--filter %j", async (filters, names) => {
    const args = ["ps", ...filters.flatMap((f) => ["--filter", f]), "--format", "{{.Names}}"];
    expect(lines(await ok(args))).toEqual(names);
  });

  test("-a with filters: same key ORed, different keys ANDed", async () => {
    const out = await ok([
      "ps",
      "-a",
      "-f",
      "name=^c-exit",
      "-f",
      "label=tier=db",
      "--format",
      "{{.Names}}",
    ]);
    expect(lines(out)).toEqual(["c-exit0"]);
    const both = await ok([
      "ps",
      "-a",
      "-f",
      "name=c-exit0",
      "-f",
      "name=c-up",
      "--format",
      "{{.Names}}",
    ]);
    expect(lines(both)).toEqual(["c-up", "c-exit0"]);
  });

  test.each([
    [
      ["ps", "--filter", "status=sleeping"],
      /^minibox: invalid filter 'status=sleeping'; use one of created/,
    ],
    [["ps", "--filter", "colour=red"], /^minibox: invalid filter "colour=red"/],
    [["ps", "--filter", "before=nobody"], /^minibox: No such container: nobody/],
    [
      ["ps", "--format", "{{.Names"],
      /^minibox: template parsing error: template: :1: unclosed action/,
    ],
    [
      ["ps", "--format", "{{bogus .Names}}"],
      /^minibox: template parsing error: .*function "bogus" not defined/,
    ],
    [
      ["ps", "--format", "{{.Nope}}"],
      /^minibox: template: :1: executing "" at <\.Nope>: can't evaluate field Nope/,
    ],
  ])("bad input %j: one clear line, non-zero", async (args, message) => {
    const r = await box.run(args);
    expect(r.code).not.toBe(0);
    expect(oneLineError(r)).toMatch(message);
    expect(r.stdout).toBe("");
  });
});

describe("images", () => {
  test("--format 'table …' and a plain template", async () => {
    const out = await ok([
      "images",
      "--filter",
      "reference=demo/*",
      "--format",
      "table {{.Repository}}\\t{{.Tag}}",
    ]);
    expect(out).toBe("REPOSITORY   TAG\ndemo/app     1.0\n");
    const id = (await ok(["images", "-q", "labeled"])).trim();
    expect(
      await ok(["images", "labeled", "--format", "{{.ID}} {{.Repository}}:{{.Tag}} {{.Size}}"]),
    ).toMatch(new RegExp(`^${id} labeled:v1 [\\d.]+[kM]?B\\n$`));
  });

  test.each([
    [["dangling=true"], ["<none>:<none>"]],
    [["label=tier=web"], ["labeled:v1"]],
    [["label=kind"], ["<none>:<none>"]],
    [["reference=labeled"], ["labeled:v1"]],
    [
      ["reference=demo/*", "reference=labeled:*"],
      ["demo/app:1.0", "labeled:v1"],
    ],
    [["dangling=false", "reference=nope*"], []],
  ])("--filter %j", async (filters, refs) => {
    const args = [
      "images",
      ...filters.flatMap((f) => ["--filter", f]),
      "--format",
      "{{.Repository}}:{{.Tag}}",
    ];
    expect(lines(await ok(args)).sort()).toEqual(refs.sort());
  });

  test("--format json: Docker's keys, one object per line; --no-trunc: full IDs", async () => {
    const [row, ...rest] = lines(
      await ok(["images", "--filter", "reference=demo/app", "--format", "json"]),
    );
    expect(rest).toEqual([]);
    const json = JSON.parse(row as string);
    expect(Object.keys(json)).toEqual([
      "Containers",
      "CreatedAt",
      "CreatedSince",
      "Digest",
      "ID",
      "Repository",
      "SharedSize",
      "Size",
      "Tag",
      "UniqueSize",
      "VirtualSize",
    ]);
    expect(json).toMatchObject({ Repository: "demo/app", Tag: "1.0", Containers: "N/A" });
    const full = await ok([
      "images",
      "--no-trunc",
      "-f",
      "reference=demo/app",
      "--format",
      "{{.ID}}",
    ]);
    expect(full).toMatch(/^sha256:[0-9a-f]{64}\n$/);
  });

  test("bad filters: one clear line", async () => {
    const r = await box.run(["images", "--filter", "dangling=maybe"]);
    expect(oneLineError(r)).toMatch(/invalid filter 'dangling=maybe'/);
    const before = await box.run(["images", "--filter", "before=nothing:here"]);
    expect(oneLineError(before)).toMatch(/No such image: nothing:here/);
  });
});

describe("history, inspect, volume ls, network ls, stats", () => {
  test("history --format: Docker's fields and headers", async () => {
    const createdBy = lines(await ok(["history", "--format", "{{.CreatedBy}}", "labeled:v1"]));
    expect(createdBy[0]).toContain("LABEL tier=web");
    const table = lines(
      await ok(["history", "--format", "table {{.Size}}\\t{{.Comment}}", "labeled:v1"]),
    );
    expect(table[0]).toBe("SIZE      COMMENT");
    expect(table[1]).toMatch(/^0B {8}/);
  });

  test("inspect --format with range, printf, upper and json", async () => {
    const out = await ok([
      "inspect",
      "--format",
      '{{range $k, $v := .Config.Labels}}{{if eq $k "tier"}}{{$k}}={{$v}} {{end}}{{end}}{{printf "%.4s" .State.Status | upper}} {{json (index .Config.Labels "tier")}}',
      "c-up",
    ]);
    expect(out).toBe('tier=web RUNN "web"\n');
  });

  test("inspect --format json: one compact JSON object per line, the default's objects", async () => {
    for (const args of [
      ["inspect", "c-up", "c-exit0"],
      ["image", "inspect", "labeled:v1"],
      ["volume", "inspect", "fmtvol"],
      ["network", "inspect", "none"],
    ]) {
      const whole = JSON.parse(await ok(args));
      const out = await ok([...args, "--format", "json"]);
      const objects = lines(out).map((l) => JSON.parse(l));
      expect(objects, args.join(" ")).toEqual(whole);
      expect(objects.length).toBe(args.length - (args[0] === "inspect" ? 1 : 2));
    }
  });

  test("volume ls --format", async () => {
    expect(
      await ok(["volume", "ls", "--format", 'table {{.Name}}\\t{{.Driver}}\\t{{.Label "owner"}}']),
    ).toBe("VOLUME NAME   DRIVER    LABEL\nfmtvol        local     fmt\n");
    // Same key ORed (a name that matches nothing does not hide fmtvol).
    expect(
      await ok([
        "volume",
        "ls",
        "-f",
        "name=fmtvol",
        "-f",
        "name=nothing",
        "--format",
        "{{.Name}}",
      ]),
    ).toBe("fmtvol\n");
    const mountpoint = (await ok(["volume", "ls", "--format", "{{.Mountpoint}}"])).trim();
    expect(mountpoint).toBe(path.join(box.root, "volumes", "fmtvol", "_data"));
  });

  test("network ls --format (the predefined networks)", async () => {
    expect(
      await ok([
        "network",
        "ls",
        "-f",
        "name=none",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}",
      ]),
    ).toBe("none null local\n");
    expect(
      await ok(["network", "ls", "-f", "name=host", "--format", "table {{.Name}}\\t{{.Driver}}"]),
    ).toBe("NAME      DRIVER\nhost      host\n");
  });

  test("stats --format", async () => {
    expect(
      await ok([
        "stats",
        "--no-stream",
        "--format",
        "table {{.Container}}\\t{{.Name}}\\t{{.PIDs}}",
        "c-up",
      ]),
    ).toBe("CONTAINER   NAME      PIDS\nc-up        c-up      1\n");
    const json = JSON.parse(
      await ok(["stats", "--no-stream", "--no-trunc", "--format", "json", "c-up"]),
    );
    expect(json).toMatchObject({ Container: "c-up", Name: "c-up", PIDs: "1" });
    expect(json.ID).toMatch(/^[0-9a-f]{64}$/);
  });
});
