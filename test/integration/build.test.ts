// `minibox build`: the talk's two Dockerfiles on the busybox fixture, the
// cache, .dockerignore, and the images they make running for real.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { oneLineError, type Sandbox, sandbox } from "../support/minibox.js";
import { testEnv } from "../support/testenv.js";

const env = testEnv();
const BASE = `${env.registries.anon}/fixtures/base`;

let box: Sandbox;
let dir: string;
beforeAll(async () => {
  box = sandbox();
  dir = mkdtempSync(path.join(tmpdir(), "minibox-build-"));
  expect((await box.run(["pull", "-q", BASE])).code).toBe(0);
});
afterAll(() => {
  box.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

function context(name: string, files: Record<string, string>): string {
  const ctx = path.join(dir, name);
  mkdirSync(ctx, { recursive: true });
  for (const [f, content] of Object.entries(files)) writeFileSync(path.join(ctx, f), content);
  return ctx;
}

describe("build", () => {
  test("the hello image: steps, cache, .dockerignore, and it runs as nobody", async () => {
    const ctx = context("hello", {
      Dockerfile: `FROM ${BASE}\nCOPY greeting.txt ./\nUSER nobody\nCMD ["cat", "greeting.txt"]\n`,
      "greeting.txt": "Hello from minibox!\n",
      "api.secret": "do not send me\n",
      ".dockerignore": "*.secret\n",
    });
    const first = await box.run(["build", "-t", "hello", ctx]);
    expect(first.code, first.stderr).toBe(0);
    const lines = first.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^Sending build context to minibox {2}[\d.]+kB$/);
    expect(lines).toContain(`Step 1/4 : FROM ${BASE}`);
    expect(lines).toContain("Step 2/4 : COPY greeting.txt ./");
    expect(lines.filter((l) => /^ ---> [0-9a-f]{12}$/.test(l))).toHaveLength(4);
    expect(lines.at(-2)).toMatch(/^Successfully built [0-9a-f]{12}$/);
    expect(lines.at(-1)).toBe("Successfully tagged hello:latest");
    const run = await box.run(["run", "--rm", "hello"]);
    expect(run.stdout).toBe("Hello from minibox!\n");
    expect((await box.run(["run", "--rm", "hello", "id", "-u"])).stdout).toBe("65534\n");
    // The ignored secret never reached the image.
    const root = (await box.run(["run", "--rm", "hello", "ls", "/"])).stdout.split("\n");
    expect(root).toContain("greeting.txt");
    expect(root).not.toContain("api.secret");

    const again = await box.run(["build", "-t", "hello", ctx]);
    expect(again.stdout.match(/---> Using cache/g)).toHaveLength(3);
    expect(again.stdout.match(/Successfully built ([0-9a-f]{12})/)?.[1]).toBe(
      first.stdout.match(/Successfully built ([0-9a-f]{12})/)?.[1],
    );
    // Changing greeting.txt reruns from its COPY on.
    writeFileSync(path.join(ctx, "greeting.txt"), "Changed!\n");
    const changed = await box.run(["build", "-t", "hello", ctx]);
    expect(changed.stdout.match(/---> Using cache/g)).toBeNull();
    expect((await box.run(["run", "--rm", "hello"])).stdout).toBe("Changed!\n");

    const history = await box.run(["history", "--no-trunc", "hello"]);
    expect(history.stdout).toMatch(/#\(nop\)\s+CMD \["cat","greeting.txt"\]\s+0B/);
    expect(history.stdout).toMatch(/#\(nop\)\s+USER nobody\s+0B/);
    expect(history.stdout).toMatch(/#\(nop\)\s+COPY file:[0-9a-f]+ in \/\s+9B/);
  });

  test("the web server image: RUN with a whiteout, WORKDIR, COPY, USER, CMD httpd", async () => {
    const ctx = context("web", {
      Dockerfile: [
        `FROM ${BASE}`,
        "RUN mkdir -p /etc/files && echo built > /etc/files/built.txt && rm /etc/os-release",
        "WORKDIR /etc/files",
        "COPY greeting.txt .",
        "EXPOSE 8080",
        "USER nobody",
        'CMD ["httpd", "-f", "-v", "-p", "8080"]',
        "",
      ].join("\n"),
      "greeting.txt": "Hello from the web server\n",
    });
    const built = await box.run(["build", "-t", "web", ctx]);
    expect(built.code, built.stderr).toBe(0);
    expect(built.stdout).toMatch(
      /---> Running in [0-9a-f]{12}\nRemoving intermediate container [0-9a-f]{12}/,
    );
    const look = await box.run([
      "run",
      "--rm",
      "web",
      "sh",
      "-c",
      "pwd; cat built.txt; ls /etc/os-release 2>&1",
    ]);
    expect(look.stdout).toBe("/etc/files\nbuilt\nls: /etc/os-release: No such file or directory\n");
    const inspect = JSON.parse((await box.run(["image", "inspect", "web"])).stdout)[0];
    expect(inspect.Config.ExposedPorts).toEqual({ "8080/tcp": {} });
    expect(inspect.Config.User).toBe("nobody");
    expect(inspect.RootFS.Layers).toHaveLength(3);

    await box.run(["run", "-d", "--name", "web1", "web"]);
    const page = await box.run([
      "exec",
      "web1",
      "wget",
      "-qO-",
      "http://127.0.0.1:8080/greeting.txt",
    ]);
    expect(page.stdout).toBe("Hello from the web server\n");
    await box.run(["rm", "-f", "web1"]);
  });

  test("a failing RUN and a bad Dockerfile fail clearly, building nothing", async () => {
    const failing = context("failing", { Dockerfile: `FROM ${BASE}\nRUN exit 3\n` });
    const r = await box.run(["build", "-t", "nope", failing]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trimEnd().split("\n").at(-1)).toMatch(/returned a non-zero code: 3/);
    const bad = context("bad", { Dockerfile: `FROM ${BASE}\nRUNN true\n` });
    const b = await box.run(["build", bad]);
    expect(oneLineError(b)).toMatch(/Dockerfile:2: unknown instruction: RUNN/i);
    expect((await box.run(["images", "-q", "nope"])).stdout).toBe("");
    expect((await box.run(["ps", "-aq"])).stdout).toBe("");
  });
});
