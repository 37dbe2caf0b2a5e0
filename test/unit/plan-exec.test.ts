import { describe, expect, it } from "vitest";
import { buildExecPlan, type ExecOptions } from "../../src/runtime/exec.js";
import { buildPlan } from "../../src/runtime/plan.js";
import { generateSpec } from "../../src/runtime/spec.js";
import { IDMAP, layout, lines, settings } from "./plan-fixtures.js";

const spec = generateSpec(settings({ idmap: IDMAP, env: ["A=1", "B=2"] }));
const opts = (over: Partial<ExecOptions> = {}): ExecOptions => ({
  command: ["sh"],
  tty: false,
  interactive: false,
  env: [],
  detach: false,
  ...over,
});
const root = { uid: 0, gid: 0, additionalGids: [] };

describe("buildExecPlan", () => {
  it("joins the cgroup and namespaces, then forks into the PID namespace", () => {
    const plan = buildExecPlan(spec, 42, ["/cg/cgroup.procs"], opts({ tty: true }), root);
    expect(lines(plan.setup)).toEqual([
      "write /cg/cgroup.procs 0",
      "setns 42 user cgroup ipc uts net pid mnt",
      "pty",
      "clone 0",
    ]);
    expect(lines(plan.parent)).toEqual(["report-pid"]);
  });

  it("drops privilege with the same steps as run", () => {
    const exec = buildExecPlan(spec, 42, [], opts(), root);
    const run = buildPlan(spec, layout());
    const credentials = (steps: typeof exec.child) =>
      steps
        .filter((s) => ["groups", "bounding", "caps", "no-new-privs"].includes(s.op))
        .map((s) => `${s.op} ${s.args.join(" ")} (${s.describe})`);
    expect(credentials(exec.child)).toEqual(credentials(run.child));
  });

  it("a non-root user gets the bounding set but no effective or permitted capabilities", () => {
    const plan = buildExecPlan(spec, 42, [], opts(), { uid: 1000, gid: 1000, additionalGids: [7] });
    const child = lines(plan.child);
    expect(child).toContain("groups 7");
    expect(child).toContain("user 1000 1000");
    expect(child).toContain("caps 0 0 0");
    expect(child).toContain("bounding a80425fb");
  });

  it("env: the container's, TERM=xterm with -t, then -e overriding", () => {
    const plan = buildExecPlan(spec, 42, [], opts({ tty: true, env: ["B=3", "C=4"] }), root);
    const env = lines(plan.child).filter((l) => l.startsWith("env "));
    expect(env).toEqual([
      "env PATH=/bin",
      "env HOSTNAME=box",
      "env A=1",
      "env B=3",
      "env HOME=/root",
      "env TERM=xterm",
      "env C=4",
    ]);
  });

  it("-w overrides the working directory; without -i stdin is /dev/null", () => {
    const child = lines(buildExecPlan(spec, 42, [], opts({ workdir: "/tmp" }), root).child);
    expect(child.slice(0, 3)).toEqual(["user 0 0", "stdin-null", "chdir /tmp"]);
    expect(child.at(-1)).toBe("exec sh");
  });
});
