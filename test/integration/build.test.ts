// `minibox build`: the talk's two Dockerfiles on the busybox fixture, the
// cache, .dockerignore, and the images they make running for real.
import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { oneLineError, REPO_ROOT, type Sandbox, sandbox } from "../support/minibox.js";
import { clientEnv, testEnv } from "../support/testenv.js";

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

  test("multi-stage: COPY --from a stage by name and index, FROM a stage, --target, global ARG", async () => {
    const ctx = context("multi", {
      Dockerfile: [
        `ARG BASE=${BASE}`,
        "FROM $BASE AS builder",
        "RUN mkdir -p /out && echo built > /out/result && chown 1000:50 /out/result",
        "COPY --chown=app:staff tool.sh /out/bin/tool",
        "FROM builder AS tested",
        'RUN test "$(sh /out/bin/tool)" = tool',
        "FROM $BASE",
        "COPY --from=builder /out /app",
        "COPY --from=0 --chown=nobody /out/result /copied",
        'CMD ["sh", "-c", "ls -ln /app/result /app/bin/tool /copied | awk \'{print $3, $4, $NF}\'; cat /app/result"]',
        "",
      ].join("\n"),
      "tool.sh": "#!/bin/sh\necho tool\n",
    });
    const built = await box.run(["build", "-t", "multi", ctx]);
    expect(built.code, built.stderr).toBe(0);
    expect(built.stdout).toContain("Step 2/10 : FROM $BASE AS builder");
    const run = await box.run(["run", "--rm", "multi"]);
    expect(run.stdout).toBe(
      "1000 50 /app/bin/tool\n1000 50 /app/result\n65534 65534 /copied\nbuilt\n",
    );
    // Only the last stage's layers are in the final image: base + two COPY --from.
    const inspect = JSON.parse((await box.run(["image", "inspect", "multi"])).stdout)[0];
    expect(inspect.RootFS.Layers).toHaveLength(3);
    // Rebuilt: every step from the cache, the same image.
    const again = await box.run(["build", "-t", "multi", ctx]);
    expect(again.stdout.match(/---> Using cache/g)).toHaveLength(6);
    expect(again.stdout.match(/Successfully built (\w+)/)?.[1]).toBe(
      built.stdout.match(/Successfully built (\w+)/)?.[1],
    );
    // --target stops after that stage: the builder image has /out, runs the RUN's result.
    const target = await box.run(["build", "--target", "builder", "-t", "stage1", ctx]);
    expect(target.code, target.stderr).toBe(0);
    expect(target.stdout).toContain("Step 4/4 : COPY --chown=app:staff tool.sh /out/bin/tool");
    expect((await box.run(["run", "--rm", "stage1", "sh", "/out/bin/tool"])).stdout).toBe("tool\n");
    const missing = await box.run(["build", "--target", "nope", ctx]);
    expect(oneLineError(missing)).toMatch(/failed to reach build target nope/);
    const badFrom = context("badfrom", {
      Dockerfile: `FROM ${BASE}\nCOPY --from=0 /etc/passwd /x\n`,
    });
    const bad = await box.run(["build", badFrom]);
    expect(oneLineError(bad)).toMatch(/invalid from flag value 0/);
  });

  test("ADD unpacks a local tar archive; --chown by name; a missing user fails clearly", async () => {
    const ctx = context("add", {
      Dockerfile: [
        `FROM ${BASE}`,
        "ADD tree.tar.gz /opt/",
        "ADD plain.tar /plain",
        "ADD --chown=app notes.txt /home/app/notes.txt",
        'CMD ["sh", "-c", "cat /opt/tree/a.txt /plain/p.txt; stat -c \'%u:%g\' /opt/tree/a.txt /home/app/notes.txt"]',
        "",
      ].join("\n"),
      "notes.txt": "notes\n",
    });
    const src = path.join(dir, "tarsrc");
    mkdirSync(path.join(src, "tree"), { recursive: true });
    writeFileSync(path.join(src, "tree", "a.txt"), "from the archive\n");
    writeFileSync(path.join(src, "p.txt"), "plain archive\n");
    execFileSync("tar", [
      "-C",
      src,
      "--owner=7",
      "--group=8",
      "-czf",
      path.join(ctx, "tree.tar.gz"),
      "tree",
    ]);
    execFileSync("tar", ["-C", src, "-cf", path.join(ctx, "plain.tar"), "p.txt"]);
    const built = await box.run(["build", "-t", "added", ctx]);
    expect(built.code, built.stderr).toBe(0);
    const run = await box.run(["run", "--rm", "added"]);
    expect(run.stdout).toBe("from the archive\nplain archive\n7:8\n1000:1000\n");
    // COPY copies an archive as it is.
    const copy = context("copytar", {
      Dockerfile: `FROM ${BASE}\nCOPY tree.tar.gz /\n`,
    });
    execFileSync("cp", [path.join(ctx, "tree.tar.gz"), copy]);
    expect((await box.run(["build", "-t", "copied", copy])).code).toBe(0);
    expect((await box.run(["run", "--rm", "copied", "ls", "/tree.tar.gz"])).stdout).toBe(
      "/tree.tar.gz\n",
    );
    const nouser = context("nouser", {
      Dockerfile: `FROM ${BASE}\nCOPY --chown=ghost notes.txt /\n`,
      "notes.txt": "x\n",
    });
    const failed = await box.run(["build", nouser]);
    expect(oneLineError(failed)).toMatch(/can't find uid for user ghost/);
    const url = context("url", {
      Dockerfile: `FROM ${BASE}\nADD http://127.0.0.1:1/file.txt /\n`,
    });
    expect(oneLineError(await box.run(["build", url]))).toMatch(/ADD of a URL .* is not supported/);
  });

  test("every instruction lands in the image config", async () => {
    const ctx = context("every", {
      Dockerfile: [
        "# escape=\\",
        `FROM ${BASE}`,
        "ARG GREETING=hello",
        "ARG UNUSED",
        'ENV ONE=1 TWO="two words"',
        "ENV THREE 3",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: Dockerfile syntax, not JS
        'LABEL org.example.title="every instruction" version=${GREETING}',
        "WORKDIR /srv/app",
        "WORKDIR sub",
        'SHELL ["/bin/sh", "-ec"]',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: Dockerfile syntax, not JS
        'RUN echo "$GREETING $ONE $TWO ${MISSING:-fallback}" > said.txt \\',
        "    && pwd >> said.txt",
        'RUN ["/bin/sh", "-c", "echo exec form > exec.txt"]',
        "COPY --chmod=750 tool.sh /usr/local/bin/tool",
        "EXPOSE 8080 53/udp",
        "VOLUME /data",
        "STOPSIGNAL SIGINT",
        "HEALTHCHECK --interval=5s CMD wget -q http://127.0.0.1/ || exit 1",
        "USER app:staff",
        'ENTRYPOINT ["cat"]',
        'CMD ["said.txt", "exec.txt"]',
        "",
      ].join("\n"),
    });
    writeFileSync(path.join(ctx, "tool.sh"), "#!/bin/sh\necho tool\n");
    const built = await box.run([
      "build",
      "--build-arg",
      "GREETING=hi",
      "--label",
      "org.example.built-by=test",
      "-t",
      "every",
      "-t",
      "every:2",
      ctx,
    ]);
    expect(built.code, built.stderr).toBe(0);
    const run = await box.run(["run", "--rm", "every"]);
    expect(run.stdout).toBe("hi 1 two words fallback\n/srv/app/sub\nexec form\n");
    const c = JSON.parse((await box.run(["image", "inspect", "every"])).stdout)[0].Config;
    expect(c.Env).toEqual(expect.arrayContaining(["ONE=1", "TWO=two words", "THREE=3"]));
    expect(c.Env.some((e: string) => e.startsWith("GREETING="))).toBe(false);
    expect(c.Labels).toMatchObject({
      "org.example.title": "every instruction",
      version: "hi",
      "org.example.built-by": "test",
    });
    expect(built.stdout).toContain("Successfully tagged every:2\n");
    const tool = await box.run([
      "run",
      "--rm",
      "--entrypoint",
      "stat",
      "every",
      "-c",
      "%a %u",
      "/usr/local/bin/tool",
    ]);
    expect(tool.stdout).toBe("750 0\n");
    expect(c.WorkingDir).toBe("/srv/app/sub");
    expect(c.ExposedPorts).toEqual({ "8080/tcp": {}, "53/udp": {} });
    expect(c.Volumes).toEqual({ "/data": {} });
    expect(c.StopSignal).toBe("SIGINT");
    expect(c.Healthcheck).toEqual({
      Test: ["CMD-SHELL", "wget -q http://127.0.0.1/ || exit 1"],
      Interval: 5_000_000_000,
    });
    expect(c.User).toBe("app:staff");
    expect(c.Shell).toEqual(["/bin/sh", "-ec"]);
    expect(c.Entrypoint).toEqual(["cat"]);
    expect(c.Cmd).toEqual(["said.txt", "exec.txt"]);
    // `run IMAGE ARGS` replaces CMD and keeps the ENTRYPOINT.
    expect((await box.run(["run", "--rm", "every", "exec.txt"])).stdout).toBe("exec form\n");
  });

  test("--no-cache with SOURCE_DATE_EPOCH builds the same layers twice", async () => {
    const ctx = context("repro", {
      Dockerfile: [
        `FROM ${BASE}`,
        "COPY data.txt /data/",
        "RUN echo made > /made.txt && rm /etc/os-release",
        "",
      ].join("\n"),
      "data.txt": "same bytes\n",
    });
    const layers = async () => {
      const r = await box.run(["build", "--no-cache", "-q", ctx], {
        env: { SOURCE_DATE_EPOCH: "1700000000" },
      });
      expect(r.code, r.stderr).toBe(0);
      const inspect = JSON.parse((await box.run(["image", "inspect", r.stdout.trim()])).stdout)[0];
      return { id: inspect.Id, layers: inspect.RootFS.Layers };
    };
    const first = await layers();
    await new Promise((r) => setTimeout(r, 1100)); // a later second: mtimes would differ
    const second = await layers();
    expect(second.layers).toEqual(first.layers);
    expect(second.layers).toHaveLength(3);
    expect(second.id).toBe(first.id);
  });

  test("a base image re-pulled to a new digest invalidates the cache", async () => {
    const repo = `${env.registries.anon}/build/rebase`;
    const skopeo = (from: string) =>
      execFileSync(
        "skopeo",
        [
          "copy",
          "--src-tls-verify=false",
          "--dest-tls-verify=false",
          `docker://${env.registries.anon}/${from}`,
          `docker://${repo}:latest`,
        ],
        { env: clientEnv(env), stdio: "pipe" },
      );
    skopeo("fixtures/base:latest");
    const ctx = context("rebase", {
      Dockerfile: `FROM ${repo}\nCOPY data.txt /\n`,
      "data.txt": "data\n",
    });
    const first = await box.run(["build", "-t", "rebased", ctx]);
    expect(first.code, first.stderr).toBe(0);
    const cached = await box.run(["build", "-t", "rebased", ctx]);
    expect(cached.stdout).toContain("---> Using cache");
    skopeo("fixtures/layered:latest");
    expect((await box.run(["pull", "-q", repo])).code).toBe(0);
    const rebuilt = await box.run(["build", "-t", "rebased", ctx]);
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(rebuilt.stdout).not.toContain("Using cache");
    const ls = await box.run(["run", "--rm", "rebased", "cat", "/data.txt"]);
    expect(ls.stdout).toBe("data\n");
  });

  test("intermediate images: hidden from images, named by history, removed with the last child", async () => {
    const own = sandbox();
    try {
      expect((await own.run(["pull", "-q", BASE])).code).toBe(0);
      const ctx = context("parents", {
        Dockerfile: `FROM ${BASE}\nCOPY a.txt /\nENV X=1\nCMD ["cat", "/a.txt"]\n`,
        "a.txt": "a\n",
      });
      const built = await own.run(["build", "-t", "kid", ctx]);
      expect(built.code, built.stderr).toBe(0);
      const steps = [...built.stdout.matchAll(/ ---> ([0-9a-f]{12})$/gm)].map((m) => m[1]);
      expect(steps).toHaveLength(4); // base, COPY, ENV, CMD
      const listed = (args: string[]) =>
        own.run(["images", "-q", ...args]).then((r) => r.stdout.trim().split("\n").sort());
      expect(await listed([])).toEqual([steps[0], steps[3]].sort());
      expect(await listed(["-a"])).toEqual([...steps].sort());
      const history = await own.run(["history", "-q", "kid"]);
      expect(history.stdout.trim().split("\n")).toEqual([...steps].reverse());
      // A rebuild with new content leaves the old image dangling: `image prune` removes
      // it with its intermediate parents and its own layer, and keeps the new build.
      writeFileSync(path.join(ctx, "a.txt"), "changed\n");
      const rebuilt = await own.run(["build", "-t", "kid", ctx]);
      expect(rebuilt.code, rebuilt.stderr).toBe(0);
      expect(await listed([])).toContain(steps[3]); // <none>: dangling
      const prune = await own.run(["image", "prune", "-f"]);
      expect(prune.stdout.match(/^deleted: /gm)).toHaveLength(4); // 3 images + the old COPY layer
      expect(prune.stdout).toMatch(/\nTotal reclaimed space: 2B\n$/);
      expect(await listed(["-a"])).not.toContain(steps[3]);
      expect((await own.run(["run", "--rm", "kid"])).stdout).toBe("changed\n");
      const newSteps = [...rebuilt.stdout.matchAll(/ ---> ([0-9a-f]{12})$/gm)].map((m) => m[1]);
      steps.splice(0, steps.length, ...newSteps);
      // The base has children: removing its only tag untags it and keeps it.
      const base = await own.run(["rmi", BASE]);
      expect(base.stdout).toMatch(/^Untagged: /);
      expect(base.stdout).not.toContain("Deleted");
      const byId = await own.run(["rmi", steps[2] as string]);
      expect(oneLineError(byId)).toMatch(/image has dependent child images/);
      const rmi = await own.run(["rmi", "kid"]);
      expect(rmi.code, rmi.stderr).toBe(0);
      // kid, its two parents, and the base (untagged above, now childless), with both layers.
      expect(rmi.stdout.match(/^Deleted: /gm)).toHaveLength(6);
      expect((await own.run(["images", "-aq"])).stdout).toBe("");
    } finally {
      own.cleanup();
    }
  });

  test("the tutorial's slide script runs and prints the talk's shapes", () => {
    const out = execFileSync(path.join(REPO_ROOT, "docs/examples/talk-slides.sh"), {
      encoding: "utf8",
    });
    expect(out).toMatch(
      /Step 1\/4 : FROM busybox\n ---> [0-9a-f]{12}\nStep 2\/4 : COPY greeting.txt \.\/\n ---> [0-9a-f]{12}\n/,
    );
    expect(out).toContain("# minibox run --rm hello\nHello from minibox!\n");
    expect(out.match(/ ---> Using cache/g)).toHaveLength(3);
    expect(out).toMatch(/ ---> Running in [0-9a-f]{12}\nRemoving intermediate container/);
    const history = out.slice(
      out.indexOf("# minibox history web"),
      out.indexOf("# minibox images"),
    );
    const rows = history.trim().split("\n").slice(2);
    expect(rows).toHaveLength(7);
    expect(rows[0]).toMatch(/^[0-9a-f]{12} .*\/bin\/sh -c #\(nop\) {2}CMD \["httpd".* 0B/);
    expect(rows.filter((r) => / 0B\s*$/.test(r)).length).toBeGreaterThanOrEqual(5);
    // Slide 7: the server published on the host's loopback, curl'ed from the host.
    expect(out).toContain("# curl localhost:9090/greeting.txt\nHello from the web server\n");
    expect(out).toMatch(/ 127\.0\.0\.1:9090->8080\/tcp {3}server\n/);
    expect(out).toContain("# minibox port server\n8080/tcp -> 127.0.0.1:9090\n");
    expect(out).toMatch(/Exited \(137\) .* {11}server\n/);
    // Names on a network of one's own.
    expect(out).toMatch(/greeting\.txt'\nHello from the web server\n# minibox rm -f server\n/);
    // Slide 13: a read-only bind mount served on every interface, with the warning.
    expect(out).toContain(
      "minibox: warning: 9091->8080/tcp published on every interface of this host (0.0.0.0)",
    );
    expect(out).toContain("# curl localhost:9091/greeting.txt\nHello from a bind mount\n");
  });

  test("whiteouts from RUN: the image runs, pushes, and unpacks the same with skopeo + umoci", async () => {
    const ctx = context("whiteouts", {
      Dockerfile: [
        `FROM ${BASE}`,
        // a base file deleted, a base directory replaced by a new one (opaque)
        "RUN rm /etc/os-release && rm -rf /home && mkdir -p /home/new && echo n > /home/new/f",
        "",
      ].join("\n"),
    });
    const built = await box.run(["build", "-t", "whiteouts", ctx]);
    expect(built.code, built.stderr).toBe(0);
    const look = "ls /etc/os-release 2>/dev/null; ls -A /home; cat /home/new/f";
    expect((await box.run(["run", "--rm", "whiteouts", "sh", "-c", look])).stdout).toBe("new\nn\n");

    const ref = `${env.registries.anon}/build/whiteouts:1`;
    expect((await box.run(["tag", "whiteouts", ref])).code).toBe(0);
    const push = await box.run(["push", ref]);
    expect(push.code, push.stderr).toBe(0);
    // A fresh root pulls and runs it the same.
    const fresh = sandbox();
    try {
      expect((await fresh.run(["pull", "-q", ref])).code).toBe(0);
      expect((await fresh.run(["run", "--rm", ref, "sh", "-c", look])).stdout).toBe("new\nn\n");
    } finally {
      fresh.cleanup();
    }
    // Independent tools: skopeo fetches it, umoci applies the layers with their whiteouts.
    const work = mkdtempSync(path.join(tmpdir(), "minibox-umoci-"));
    try {
      execFileSync(
        "skopeo",
        ["copy", "--src-tls-verify=false", `docker://${ref}`, `oci:${work}/layout:1`],
        { env: clientEnv(env), stdio: "pipe" },
      );
      execFileSync("umoci", ["unpack", "--image", `${work}/layout:1`, `${work}/bundle`], {
        stdio: "pipe",
      });
      const rootfs = path.join(work, "bundle", "rootfs");
      expect(existsSync(path.join(rootfs, "etc/os-release"))).toBe(false);
      expect(existsSync(path.join(rootfs, "etc/passwd"))).toBe(true);
      expect(readdirSync(path.join(rootfs, "home"))).toEqual(["new"]);
      expect(readFileSync(path.join(rootfs, "home/new/f"), "utf8")).toBe("n\n");
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  test("Ctrl-C stops a build: the RUN container is killed and removed, nothing is tagged", async () => {
    const ctx = context("interrupted", {
      Dockerfile: `FROM ${BASE}\nRUN echo started; sleep 60\nCMD ["true"]\n`,
    });
    const { child, done } = box.spawn(["build", "--no-cache", "-t", "interrupted", ctx]);
    try {
      let seen = "";
      await new Promise<void>((resolve) => {
        child.stdout?.on("data", (d) => {
          seen += d;
          if (seen.includes("\nstarted\n")) resolve(); // the RUN's own output: it is running
        });
      });
      // The step's container is listed, its image by short ID as Docker shows it.
      const ps = (await box.run(["ps"])).stdout.split("\n")[1] ?? "";
      expect(ps).toMatch(
        /^[0-9a-f]{12} {3}[0-9a-f]{12} {3}"\/bin\/sh -c echo sta…" .* build-[0-9a-f]+$/,
      );
    } finally {
      child.kill("SIGINT"); // also when an assertion above failed: never leave the sleep behind
    }
    const t0 = Date.now();
    const r = await done;
    expect(r.code).toBe(130);
    expect(Date.now() - t0).toBeLessThan(20_000); // not the 60 s of the sleep
    expect(r.stderr).toBe("minibox: the build was interrupted\n");
    expect(r.stdout).toMatch(/Removing intermediate container [0-9a-f]{12}/);
    expect((await box.run(["ps", "-aq"])).stdout).toBe("");
    expect((await box.run(["images", "-q", "interrupted"])).stdout).toBe("");
  });
});
