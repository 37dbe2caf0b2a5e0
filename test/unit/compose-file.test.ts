// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${VAR} here is compose syntax, not a template
// Compose files: interpolation, .env, line-numbered validation errors, dependency order.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { interpolate } from "../../src/compose/interpolate.js";
import { loadProject, normaliseProjectName } from "../../src/compose/load.js";
import { resolveProject, splitWords } from "../../src/compose/model.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function project(
  yaml: string,
  files: Record<string, string> = {},
  env: Record<string, string> = {},
) {
  const dir = mkdtempSync(join(tmpdir(), "My Proj."));
  dirs.push(dir);
  writeFileSync(join(dir, "compose.yaml"), yaml);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return resolveProject(loadProject(undefined, undefined, env, dir));
}

function error(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error("no error");
}

describe("interpolate", () => {
  const vars = { A: "a", EMPTY: "" };
  it.each([
    ["$A ${A}", "a a"],
    ["${B:-x}", "x"],
    ["${EMPTY:-x}", "x"],
    ["${EMPTY-x}", ""],
    ["${B-x}", "x"],
    ["${A:+set}", "set"],
    ["$$A", "$A"],
    ["${B:-${A}b}", "ab"],
    ["cost 5$", "cost 5$"],
  ])("%s → %s", (text, want) => {
    expect(interpolate(text, vars, "f")).toBe(want);
  });
  it("${VAR:?err} names the variable", () => {
    expect(error(() => interpolate("${NOPE:?set NOPE first}", vars, "compose.yaml:3: x"))).toBe(
      "compose.yaml:3: x: required variable NOPE is missing a value: set NOPE first",
    );
  });
});

describe("compose file", () => {
  it("takes the project name from the directory, normalised", () => {
    expect(normaliseProjectName("My Proj.x_Y-1")).toBe("myprojx_y-1");
  });

  it("reads .env, the environment winning over it", () => {
    const p = project(
      "services:\n  web:\n    image: ${IMG}:${TAG:-latest}\n    environment:\n      - A=${A}\n",
      { ".env": "IMG=busybox\nA=from-dotenv\n" },
      { A: "from-shell" },
    );
    expect(p.services[0]?.image).toBe("busybox:latest");
    expect(p.services[0]?.environment).toEqual({ A: "from-shell" });
  });

  it("names the line and key of an unknown key", () => {
    const yaml = "services:\n  web:\n    image: busybox\n    prots:\n      - 80:80\n";
    expect(error(() => project(yaml))).toBe("compose.yaml:4: services.web.prots: unknown key");
  });

  it("refuses a dependency cycle", () => {
    const yaml =
      "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on:\n      a:\n        condition: service_started\n";
    expect(error(() => project(yaml))).toBe(
      "compose.yaml:4: services.a.depends_on: dependency cycle: a -> b -> a",
    );
  });

  it("refuses a host port published by two services", () => {
    const yaml =
      'services:\n  a:\n    image: x\n    ports: ["8080:80"]\n  b:\n    image: x\n    ports:\n      - "127.0.0.1:9000:90"\n      - "8080:81"\n';
    expect(error(() => project(yaml))).toBe(
      'compose.yaml:9: services.b.ports[1]: host port 8080/tcp is also published by service "a"',
    );
  });

  it("refuses an expose that is not a port or range", () => {
    const yaml = "services:\n  a:\n    image: x\n    expose:\n      - 3000\n      - http\n";
    expect(error(() => project(yaml))).toBe(
      'compose.yaml:6: services.a.expose[1]: "http" is not PORT[-PORT][/PROTOCOL]',
    );
  });

  it("refuses an undeclared named volume", () => {
    const yaml = "services:\n  a:\n    image: x\n    volumes:\n      - data:/data\n";
    expect(error(() => project(yaml))).toMatch(
      /^compose.yaml:5: services.a.volumes\[0\]: service refers to undefined volume data/,
    );
  });

  it("orders services after their dependencies and resolves names", () => {
    const yaml = [
      "services:",
      "  web:",
      "    build: ./web",
      "    command: httpd -f -p '8 0'",
      "    depends_on: [cache]",
      "    volumes: [data:/data, ./site:/www:ro]",
      "  cache:",
      "    image: busybox",
      "    networks: [back]",
      "volumes:",
      "  data: {}",
      "networks:",
      "  back:",
      "",
    ].join("\n");
    const p = project(yaml);
    expect(p.services.map((s) => s.name)).toEqual(["cache", "web"]);
    const web = p.services[1];
    expect(web?.command).toEqual(["httpd", "-f", "-p", "8 0"]);
    expect(web?.build?.context).toBe(join(p.dir, "web"));
    expect(web?.volumes).toEqual([
      { type: "volume", source: "data", target: "/data", readOnly: false },
      { type: "bind", source: join(p.dir, "site"), target: "/www", readOnly: true },
    ]);
    expect(web?.networks).toEqual(["default"]);
    expect(p.volumes.data?.name).toBe(`${p.name}_data`);
    expect(p.networks.default?.name).toBe(`${p.name}_default`);
    expect(p.name).toMatch(/^myproj/);
  });

  it("splits a command string as a shell would", () => {
    expect(
      splitWords(`sh -c "echo \\"hi\\" there" 'a b'`, () => {
        throw new Error();
      }),
    ).toEqual(["sh", "-c", 'echo "hi" there', "a b"]);
  });
});

describe("the run command line of a service", () => {
  it("carries Compose's labels, the project's network with the service's alias, and the options", async () => {
    const { runArgs, configHash } = await import("../../src/compose/run-args.js");
    const p = project(
      [
        "services:",
        "  web:",
        "    image: busybox",
        "    entrypoint: [sh, -c]",
        "    command: echo hi",
        "    environment: [A=1, FROM_SHELL]",
        "    ports: ['8080:80']",
        "    expose: [3000, 53/udp]",
        "    volumes: [data:/data:ro]",
        "    read_only: true",
        "    deploy: {resources: {limits: {cpus: '0.5', memory: 64m, pids: 20}}}",
        "volumes:",
        "  data:",
        "",
      ].join("\n"),
    );
    const web = p.services[0] as NonNullable<(typeof p.services)[0]>;
    const hash = configHash(web, "sha256:abc");
    const args = runArgs(p, web, {
      name: `${p.name}-web-1`,
      hash,
      oneoff: false,
      detach: true,
      vars: { FROM_SHELL: "x" },
    });
    const text = args.join(" ");
    expect(args.slice(0, 4)).toEqual(["run", "-d", "--name", `${p.name}-web-1`]);
    expect(text).toContain(`--label com.docker.compose.project=${p.name}`);
    expect(text).toContain("--label com.docker.compose.service=web");
    expect(text).toContain("--label com.docker.compose.container-number=1");
    expect(text).toContain(`--label com.docker.compose.config-hash=${hash}`);
    expect(text).toContain(`--network ${p.name}_default --network-alias web`);
    expect(text).toContain("-e A=1 -e FROM_SHELL=x");
    expect(text).toContain("-p 8080:80 --expose 3000 --expose 53/udp");
    expect(text).toContain(`-v ${p.name}_data:/data:ro`);
    expect(text).toContain("--read-only --cpus 0.5 --memory 64m --pids-limit 20");
    expect(args.slice(-5)).toEqual(["--entrypoint=sh", "busybox", "-c", "echo", "hi"]);
    // Another image ID, or another setting: another hash.
    expect(configHash(web, "sha256:def")).not.toBe(hash);
    expect(configHash({ ...web, user: "nobody" }, "sha256:abc")).not.toBe(hash);
  });
});

describe("long syntaxes and config", () => {
  it("writes long-syntax ports as the short ones", () => {
    const p = project(
      [
        "services:",
        "  web:",
        "    image: busybox",
        "    ports:",
        "      - {target: 80, published: 8080, host_ip: 127.0.0.1}",
        "      - {target: 53, protocol: udp}",
        "      - {target: 81, host_ip: 127.0.0.1}",
        "",
      ].join("\n"),
    );
    expect(p.services[0]?.ports).toEqual(["127.0.0.1:8080:80", "53/udp", "127.0.0.1::81"]);
  });

  it("config prints the resolved file", async () => {
    const { config } = await import("../../src/compose/commands.js");
    const p = project(
      "services:\n  web:\n    image: ${IMG:-busybox}\n    command: [echo, $$HOME]\n",
      {},
      {},
    );
    expect(config(p)).toBe(
      [
        `name: ${p.name}`,
        "services:",
        "  web:",
        "    image: busybox",
        "    command:",
        "      - echo",
        "      - $HOME",
        "    networks:",
        "      - default",
        "networks:",
        "  default:",
        `    name: ${p.name}_default`,
        "",
      ].join("\n"),
    );
  });
});

describe("healthcheck", () => {
  const withCheck = (check: string[]) =>
    project(
      ["services:", "  db:", "    image: busybox", "    healthcheck:", ...check, ""].join("\n"),
    );

  it("becomes run's --health-* flags; CMD's words quoted for sh -c", async () => {
    const { healthArgs } = await import("../../src/compose/healthcheck.js");
    const p = withCheck([
      `      test: ["CMD", "test", "-f", "/data/a file"]`,
      "      interval: 2s",
      "      timeout: 1s",
      "      retries: 5",
      "      start_period: 10s",
    ]);
    expect(healthArgs(p.services[0]?.healthcheck)).toEqual([
      "--health-cmd",
      "test -f '/data/a file'",
      "--health-interval",
      "2s",
      "--health-timeout",
      "1s",
      "--health-retries",
      "5",
      "--health-start-period",
      "10s",
    ]);
    const shell = withCheck([`      test: ["CMD-SHELL", "wget -q -O- localhost || exit 1"]`]);
    expect(healthArgs(shell.services[0]?.healthcheck).slice(0, 2)).toEqual([
      "--health-cmd",
      "wget -q -O- localhost || exit 1",
    ]);
    const none = withCheck([`      test: ["NONE"]`]);
    expect(healthArgs(none.services[0]?.healthcheck)).toEqual(["--no-healthcheck"]);
  });

  it("refuses an unknown key and a bad test, naming the line", () => {
    expect(error(() => withCheck(["      tst: [CMD, true]"]))).toMatch(
      /compose\.yaml:5: services\.db\.healthcheck\.tst: unknown key$/,
    );
    expect(error(() => withCheck(["      test: [RUN, true]"]))).toMatch(
      /services\.db\.healthcheck\.test: must be a string, or a list starting with "CMD"/,
    );
  });
});
