// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${VAR} here is compose syntax, not a template
// `minibox compose` on the real host: a web service built from a Dockerfile
// (busybox httpd), a second service with a named volume, on the project's own
// network. up -d, name resolution between services, prefixed logs, a second
// up that changes nothing, a changed command that recreates only its service,
// down -v that leaves nothing behind; and files refused before anything starts.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { oneLineError, type Result, type Sandbox, sandbox } from "../support/minibox.js";
import { testEnv } from "../support/testenv.js";

const env = testEnv();
const IMAGE = `${env.registries.anon}/fixtures/base`;
/** Unique per run: networks are the host's, shared by every --root. */
const PROJECT = `mbc${process.pid}`;

let box: Sandbox;
let dir: string;

function composeFile(cacheCommand: string): string {
  return [
    "services:",
    "  web:",
    "    build:",
    "      context: ./web",
    "      args:",
    "        GREETING: ${GREETING:-hello}",
    "    command: httpd -f -v -p 80 -h /www",
    "    init: true",
    "    depends_on:",
    "      cache:",
    "        condition: service_healthy",
    "  cache:",
    `    image: ${IMAGE}`,
    `    command: ${cacheCommand}`,
    "    init: true",
    "    healthcheck:",
    '      test: ["CMD", "test", "-f", "/data/x"]',
    "      interval: 1s",
    "      retries: 30",
    "    volumes:",
    "      - data:/data",
    "volumes:",
    "  data:",
    "",
  ].join("\n");
}

function write(file: string, text: string): string {
  const full = path.join(dir, file);
  mkdirSync(path.dirname(full), { recursive: true });
  writeFileSync(full, text);
  return full;
}

/** `minibox compose -f FILE -p PROJECT ARGS`. */
function compose(args: string[], file = path.join(dir, "compose.yaml"), project = PROJECT) {
  return box.run(["compose", "-f", file, "-p", project, ...args]);
}

async function ok(r: Promise<Result>): Promise<string> {
  const res = await r;
  expect(res.code, res.stderr).toBe(0);
  return res.stdout;
}

/** Container names, networks and volumes that carry this project's name. */
async function leftovers(project = PROJECT): Promise<string[]> {
  const ps = await ok(
    box.run([
      "ps",
      "-a",
      "--filter",
      `label=com.docker.compose.project=${project}`,
      "--format",
      "{{.Names}}",
    ]),
  );
  const nets = await ok(box.run(["network", "ls", "--format", "{{.Name}}"]));
  const vols = await ok(box.run(["volume", "ls", "--format", "{{.Name}}"]));
  return [ps, nets, vols].flatMap((t) => t.split("\n")).filter((n) => n.startsWith(project));
}

beforeAll(async () => {
  box = sandbox("minibox-compose-test-");
  dir = mkdtempSync(path.join(tmpdir(), "minibox-compose-"));
  expect((await box.run(["pull", "-q", IMAGE])).code).toBe(0);
  write(
    "web/Dockerfile",
    `FROM ${IMAGE}\nARG GREETING\nRUN mkdir /www && echo "$GREETING from web" > /www/index.html\n`,
  );
  write(
    "compose.yaml",
    composeFile(`sh -c "echo cache ready; echo stored > /data/x; exec sleep 1000"`),
  );
});

afterAll(async () => {
  await compose(["down", "-v"]).catch(() => undefined);
  box.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe("compose", () => {
  test("up -d builds and starts both services on the project's network, with Compose's names and labels", async () => {
    await ok(compose(["up", "-d"]));
    // web depends on cache being healthy: up returned only once its check passed.
    const health = await ok(
      box.run(["inspect", "--format", "{{.State.Health.Status}}", `${PROJECT}-cache-1`]),
    );
    expect(health.trim()).toBe("healthy");
    const names = await ok(
      box.run([
        "ps",
        "--filter",
        `label=com.docker.compose.project=${PROJECT}`,
        "--format",
        "{{.Names}}",
      ]),
    );
    expect(names.trim().split("\n").sort()).toEqual([`${PROJECT}-cache-1`, `${PROJECT}-web-1`]);
    const nets = await ok(box.run(["network", "ls", "--format", "{{.Name}}"]));
    expect(nets.split("\n")).toContain(`${PROJECT}_default`);
    const vols = await ok(box.run(["volume", "ls", "--format", "{{.Name}}"]));
    expect(vols.split("\n")).toContain(`${PROJECT}_data`);
    const ps = await ok(compose(["ps"]));
    expect(ps).toMatch(/^NAME\s+IMAGE\s+COMMAND\s+SERVICE\s+CREATED\s+STATUS\s+PORTS\n/);
    expect(ps).toContain(`${PROJECT}-web-1`);
    expect(ps).toMatch(new RegExp(`${PROJECT}-cache-1 .* Up .* \\(healthy\\)`));
    const formatted = await ok(
      compose(["ps", "--format", "{{.Service}}:{{.Health}}:{{.Project}}"]),
    );
    expect(formatted.trim().split("\n").sort()).toEqual([
      `cache:healthy:${PROJECT}`,
      `web::${PROJECT}`,
    ]);
    const json = (await ok(compose(["ps", "--format", "json"]))).trim().split("\n");
    expect(json.map((l) => JSON.parse(l).Name).sort()).toEqual([
      `${PROJECT}-cache-1`,
      `${PROJECT}-web-1`,
    ]);
  });

  test("a service reaches another by its service name", async () => {
    const page = await ok(
      compose(["exec", "-T", "cache", "timeout", "5", "wget", "-q", "-O", "-", "http://web/"]),
    );
    expect(page).toBe("hello from web\n");
  });

  test("logs shows every service's lines, prefixed with its container", async () => {
    const out = await ok(compose(["logs"]));
    const lines = out.trimEnd().split("\n");
    expect(lines).toContain("cache-1  | cache ready");
    expect(lines.some((l) => l.startsWith("web-1    | ") && l.includes("response:200"))).toBe(true);
    const webOnly = await ok(compose(["logs", "web"]));
    expect(webOnly).not.toContain("cache ready");
  });

  test("a second up -d changes nothing; a changed command recreates only that service", async () => {
    const ids = async () => (await ok(compose(["ps", "-q"]))).trim().split("\n").sort();
    const before = await ids();
    const again = await compose(["up", "-d"]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain(`Container ${PROJECT}-web-1  Running`);
    expect(await ids()).toEqual(before);

    const web = (await ok(box.run(["inspect", "--format", "{{.Id}}", `${PROJECT}-web-1`]))).trim();
    const cache = (
      await ok(box.run(["inspect", "--format", "{{.Id}}", `${PROJECT}-cache-1`]))
    ).trim();
    write("compose.yaml", composeFile(`sh -c "echo cache again; cat /data/x; exec sleep 1000"`));
    await ok(compose(["up", "-d"]));
    const webAfter = (
      await ok(box.run(["inspect", "--format", "{{.Id}}", `${PROJECT}-web-1`]))
    ).trim();
    const cacheAfter = (
      await ok(box.run(["inspect", "--format", "{{.Id}}", `${PROJECT}-cache-1`]))
    ).trim();
    expect(webAfter).toBe(web);
    expect(cacheAfter).not.toBe(cache);
    // The named volume outlived the old container.
    expect(await ok(compose(["logs", "cache"]))).toContain("cache-1  | stored");
  });

  test("foreground up follows the logs; Ctrl-C stops the services; start brings them back", async () => {
    const { child, done } = box.spawn([
      "compose",
      "-f",
      path.join(dir, "compose.yaml"),
      "-p",
      PROJECT,
      "up",
    ]);
    let seen = "";
    await new Promise<void>((resolve) => {
      child.stdout?.on("data", (d: Buffer) => {
        seen += d.toString();
        if (seen.includes("cache-1  | stored")) resolve();
      });
    });
    child.kill("SIGINT");
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("Gracefully stopping");
    expect((await ok(compose(["ps", "-q"]))).trim()).toBe("");
    expect((await ok(compose(["ps", "-a", "-q"]))).trim().split("\n")).toHaveLength(2);
    await ok(compose(["start"]));
    expect((await ok(compose(["ps", "-q"]))).trim().split("\n")).toHaveLength(2);
  });

  test("run --rm runs a one-off container of a service, with its volume, and removes it", async () => {
    const out = await ok(compose(["run", "--rm", "-T", "cache", "cat", "/data/x"]));
    expect(out).toBe("stored\n");
    const all = await ok(
      box.run([
        "ps",
        "-a",
        "--filter",
        `label=com.docker.compose.project=${PROJECT}`,
        "--format",
        "{{.Names}}",
      ]),
    );
    expect(all.trim().split("\n").sort()).toEqual([`${PROJECT}-cache-1`, `${PROJECT}-web-1`]);
  });

  test("stop SERVICE stops only it; build then up recreates the service whose image changed", async () => {
    await ok(compose(["stop", "web"]));
    const names = (await ok(compose(["ps"]))).split("\n").slice(1).filter(Boolean);
    expect(names.map((l) => l.split(/\s+/)[0])).toEqual([`${PROJECT}-cache-1`]);
    await ok(compose(["restart"]));
    expect((await ok(compose(["ps", "-q"]))).trim().split("\n")).toHaveLength(2);

    const id = async (s: string) =>
      (await ok(box.run(["inspect", "--format", "{{.Id}}", `${PROJECT}-${s}-1`]))).trim();
    const [web, cache] = [await id("web"), await id("cache")];
    write(
      "web/Dockerfile",
      `FROM ${IMAGE}\nARG GREETING\nRUN mkdir /www && echo "$GREETING again" > /www/index.html\n`,
    );
    await ok(compose(["build"]));
    await ok(compose(["up", "-d"]));
    expect(await id("web")).not.toBe(web);
    expect(await id("cache")).toBe(cache);
    const page = await ok(
      compose(["exec", "-T", "cache", "timeout", "5", "wget", "-q", "-O", "-", "http://web/"]),
    );
    expect(page).toBe("hello again\n");
  });

  test("down -v leaves no container, network or volume", async () => {
    await ok(compose(["down", "-v"]));
    expect(await leftovers()).toEqual([]);
  });
});

describe("compose: build's dockerfile/target/args, env_file and environment, expose, pull, logs -f", () => {
  const project = `${PROJECT}b`;
  let file: string;
  beforeAll(() => {
    write(
      "b/app/Dockerfile.alt",
      [
        `FROM ${IMAGE} AS base`,
        "ARG WHO",
        'RUN echo "built by $WHO" > /built',
        "FROM base AS final",
        "RUN echo final >> /built",
        "FROM base AS unused",
        "RUN false",
        "",
      ].join("\n"),
    );
    write("b/app.env", "FROM_FILE=file\nBOTH=from-file\n");
    file = write(
      "b/compose.yaml",
      [
        "services:",
        "  app:",
        "    build:",
        "      context: ./app",
        "      dockerfile: Dockerfile.alt",
        "      target: final",
        "      args: [WHO=compose]",
        "    env_file: app.env",
        "    environment:",
        "      BOTH: from-environment",
        "    expose: ['7000', 7001/udp]",
        "    init: true",
        `    command: sh -c "cat /built; i=0; while true; do echo tick $$i; i=$$((i+1)); sleep 0.3; done"`,
        "  base:",
        `    image: ${IMAGE}`,
        "    init: true",
        "    command: sleep 1000",
        "",
      ].join("\n"),
    );
  });
  afterAll(async () => {
    await compose(["down"], file, project).catch(() => undefined);
  });

  test("pull fetches the services' images; builds are skipped", async () => {
    const out = await compose(["pull"], file, project);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr + out.stdout).toMatch(/base\s+Pulled/);
    expect(out.stderr + out.stdout).not.toMatch(/app\s+Pulled/);
  });

  test("up builds the target stage with the args; env_file under environment; expose in the config", async () => {
    await ok(compose(["up", "-d"], file, project));
    const built = await ok(compose(["exec", "-T", "app", "cat", "/built"], file, project));
    expect(built).toBe("built by compose\nfinal\n");
    const env = await ok(compose(["exec", "-T", "app", "env"], file, project));
    expect(env).toContain("FROM_FILE=file\n");
    expect(env).toContain("BOTH=from-environment\n");
    const exposed = await ok(
      box.run(["inspect", "-f", "{{json .Config.ExposedPorts}}", `${project}-app-1`]),
    );
    expect(Object.keys(JSON.parse(exposed)).sort()).toEqual(["7000/tcp", "7001/udp"]);
  });

  test("logs -f APP follows the service's new lines, prefixed, until interrupted", async () => {
    const ticks = (text: string) => [...text.matchAll(/tick (\d+)/g)].map((m) => Number(m[1]));
    const logged = Math.max(...ticks(await ok(compose(["logs", "app"], file, project))));
    const { child, done } = box.spawn(["compose", "-f", file, "-p", project, "logs", "-f", "app"]);
    let seen = "";
    // A tick numbered past what the log held before logs -f started: it follows.
    await new Promise<void>((resolve) => {
      child.stdout?.on("data", (d: Buffer) => {
        seen += d.toString();
        if (Math.max(...ticks(seen)) > logged + 2) resolve();
      });
    });
    child.kill("SIGINT");
    await done;
    for (const line of seen.trim().split("\n")) expect(line).toMatch(/^app-1 +\| /);
    expect(seen).toContain("| built by compose");
  });
});

describe("compose refuses a bad file with one line, starting nothing", () => {
  const cases: [string, string, RegExp][] = [
    [
      "unknown key",
      `services:\n  web:\n    image: ${IMAGE}\n    prots:\n      - "8080:80"\n`,
      /^minibox: \S*\/compose\.yaml:4: services\.web\.prots: unknown key$/,
    ],
    [
      "depends_on cycle",
      `services:\n  a:\n    image: ${IMAGE}\n    depends_on: [b]\n  b:\n    image: ${IMAGE}\n    depends_on: [a]\n`,
      /^minibox: \S*\/compose\.yaml:4: services\.a\.depends_on: dependency cycle: a -> b -> a$/,
    ],
    [
      "host port used twice",
      `services:\n  a:\n    image: ${IMAGE}\n    ports: ["18080:80"]\n  b:\n    image: ${IMAGE}\n    ports: ["18080:81"]\n`,
      /^minibox: \S*\/compose\.yaml:7: services\.b\.ports\[0\]: host port 18080\/tcp is also published by service "a"$/,
    ],
  ];
  test.each(cases)("%s", async (_name, yaml, message) => {
    const project = `${PROJECT}bad`;
    const file = write(`bad-${_name.replace(/\W/g, "")}/compose.yaml`, yaml);
    const r = await compose(["up", "-d"], file, project);
    expect(r.code).not.toBe(0);
    expect(oneLineError(r)).toMatch(message);
    expect(await leftovers(project)).toEqual([]);
  });
});
