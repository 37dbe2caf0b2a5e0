// `commit`'s pure parts: which -c instructions Docker accepts, and the
// container Config rebuilt from a runtime spec (src/build/container-commit.ts).
import { describe, expect, test } from "vitest";
import { containerConfig, parseChanges } from "../../src/build/container-commit.js";
import { MiniboxError } from "../../src/errors.js";
import type { ContainerView } from "../../src/runtime/lifecycle.js";
import type { Spec } from "../../src/runtime/spec.js";

describe("parseChanges", () => {
  test("accepts what docker commit --change accepts", () => {
    const kinds = parseChanges([
      'CMD ["cat","/x"]',
      "ENTRYPOINT /bin/sh",
      "ENV A=1",
      "EXPOSE 80",
      "LABEL k=v",
      "USER app",
      "WORKDIR /srv",
      "VOLUME /data",
      "STOPSIGNAL SIGINT",
    ]).map((i) => i.kind);
    expect(kinds).toEqual([
      "CMD",
      "ENTRYPOINT",
      "ENV",
      "EXPOSE",
      "LABEL",
      "USER",
      "WORKDIR",
      "VOLUME",
      "STOPSIGNAL",
    ]);
  });

  test.each([
    ["RUN echo hi", "run is not a valid change command"],
    ["COPY a b", "copy is not a valid change command"],
    ["FROM busybox", "from is not a valid change command"],
  ])("refuses %j with Docker's words", (change, message) => {
    expect(() => parseChanges([change])).toThrow(MiniboxError);
    expect(() => parseChanges([change])).toThrow(message);
  });
});

describe("containerConfig", () => {
  const view = { exposedPorts: ["80/tcp"] } as ContainerView;
  const spec = (args: string[], env: string[], terminal = false, uid = 0) =>
    ({
      hostname: "abc123",
      process: { args, env, cwd: "/", terminal, user: { uid, gid: uid } },
      annotations: { "minibox.image": "x", tier: "web" },
      linux: {},
    }) as unknown as Spec;

  test("drops what the runtime adds to Env; keeps the image's Entrypoint apart from the Cmd", () => {
    const c = containerConfig(
      view,
      spec(
        ["/entry", "serve", "--port", "80"],
        ["PATH=/bin", "HOSTNAME=abc123", "TERM=xterm", "HOME=/root", "A=1"],
        true,
      ),
      { Env: ["PATH=/bin"], Entrypoint: ["/entry"], Cmd: ["serve"], Labels: { base: "1" } },
    );
    expect(c.Env).toEqual(["PATH=/bin", "A=1"]);
    expect(c.Entrypoint).toEqual(["/entry"]);
    expect(c.Cmd).toEqual(["serve", "--port", "80"]);
    expect(c.WorkingDir).toBe("");
    expect(c.ExposedPorts).toEqual({ "80/tcp": {} });
    expect(c.Labels).toEqual({ base: "1", tier: "web" });
  });

  test("an argv that does not start with the image's Entrypoint is all Cmd", () => {
    const c = containerConfig(view, spec(["sh", "-c", "x"], []), { Entrypoint: ["/entry"] });
    expect(c.Entrypoint).toBeNull();
    expect(c.Cmd).toEqual(["sh", "-c", "x"]);
  });

  test.each([
    ["", 0, ""],
    ["", 1000, "1000:1000"],
    ["app", 1000, "app"],
    ["1000", 1000, "1000"],
    ["1000", 0, "0:0"],
  ])("image USER %j, run as %i: User %j", (imageUser, uid, expected) => {
    expect(containerConfig(view, spec(["sh"], [], false, uid), { User: imageUser }).User).toBe(
      expected,
    );
  });
});
