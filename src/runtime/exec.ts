/**
 * `exec`: a new process inside a running container. The executor joins the
 * container's cgroup and namespaces (setns — impossible from Node, which is
 * multi-threaded), forks so the child lands in the container's PID
 * namespace, and the child takes the container's identity: its user,
 * capabilities, no_new_privs and environment, as configured in config.json,
 * with -u, -w and -e applied on top.
 */
import { MiniboxError } from "../errors.js";
import { openCgroup } from "./cgroups/index.js";
import { Execution, errnoText } from "./executor.js";
import { type ContainerView, readSpec } from "./lifecycle.js";
import { capMask, type Plan, type PlanStep, step } from "./plan.js";
import { containerPaths, readImageFile } from "./rootfs.js";
import type { Spec } from "./spec.js";
import { resolveUser } from "./user.js";

export interface ExecOptions {
  command: string[];
  tty: boolean;
  interactive: boolean;
  user?: string;
  workdir?: string;
  env: string[];
  detach: boolean;
}

/** The order in which to join: user first, mount last (see join_namespaces in native/). */
const NAMESPACES = ["user", "cgroup", "ipc", "uts", "net", "pid", "mnt"];

export function buildExecPlan(
  spec: Spec,
  pid: number,
  cgroupProcs: string[],
  opts: ExecOptions,
  user: { uid: number; gid: number; additionalGids: number[] },
): Plan {
  const own = new Set<string>(
    (spec.linux.namespaces ?? []).map((n) =>
      n.type === "mount" ? "mnt" : n.type === "network" ? "net" : n.type,
    ),
  );
  const join = NAMESPACES.filter((ns) => own.has(ns));
  const setup: PlanStep[] = [
    ...cgroupProcs.map((file) =>
      step("write", [file, "0"], `join the container's cgroup: write 0 (ourselves) to ${file}`),
    ),
    step(
      "setns",
      [String(pid), ...join],
      `setns into the namespaces of PID ${pid}: ${join.join(" ")}`,
    ),
  ];
  if (opts.tty) setup.push(step("pty", [], "socket pair to receive the terminal (-t)"));
  setup.push(step("clone", ["0"], "fork: the child is in the container's PID namespace"));

  const env = mergeEnv(spec.process.env, opts.env, opts.tty);
  const caps = spec.process.capabilities;
  const root = user.uid === 0;
  const child: PlanStep[] = [];
  if (own.has("user"))
    child.push(step("user", ["0", "0"], "become root of the container's user namespace"));
  if (opts.tty)
    child.push(step("console", [], "open a pty in the container's /dev/pts, make it our terminal"));
  else if (!opts.interactive) child.push(step("stdin-null", [], "stdin from /dev/null (no -i)"));
  child.push(
    step("chdir", [opts.workdir ?? spec.process.cwd], `chdir ${opts.workdir ?? spec.process.cwd}`),
    step(
      "groups",
      user.additionalGids.map(String),
      `setgroups [${user.additionalGids.join(", ")}]`,
    ),
    step("bounding", [capMask(caps.bounding)], "the container's capability bounding set"),
    step("user", [user.uid, user.gid], `switch to uid ${user.uid}, gid ${user.gid}`),
    step(
      "caps",
      [
        capMask(root ? caps.effective : []),
        capMask(root ? caps.permitted : []),
        capMask(caps.inheritable),
      ],
      "the container's capabilities",
    ),
  );
  if (spec.process.noNewPrivileges)
    child.push(step("no-new-privs", [], "prctl(PR_SET_NO_NEW_PRIVS)"));
  child.push(step("closefds", [], "mark every descriptor above 2 close-on-exec"));
  for (const e of env) child.push(step("env", [e], `env ${e}`));
  child.push(step("exec", opts.command, `execve ${JSON.stringify(opts.command)}`));
  return { setup, parent: [step("report-pid", [], "tell minibox the PID")], child };
}

function mergeEnv(base: string[], extra: string[], tty: boolean): string[] {
  const out = new Map(base.map((e) => [e.split("=")[0] as string, e]));
  if (tty) out.set("TERM", "TERM=xterm");
  for (const e of extra) out.set(e.split("=")[0] as string, e);
  return [...out.values()];
}

/** Run the exec; returns the process's exit status (Docker's numbers). */
export async function execInContainer(
  root: string,
  c: ContainerView,
  opts: ExecOptions,
): Promise<number> {
  if (!c.running || !c.pid) {
    throw new MiniboxError(`container ${c.id.slice(0, 12)} is not running`, "start it first", 1);
  }
  if (opts.command.length === 0) throw new MiniboxError("no command given to exec");
  const spec = await readSpec(root, c.id);
  let user = spec.process.user;
  if (opts.user !== undefined) {
    // Resolved in the container's own files, as it is now (its upper layer included).
    const etc = [{ dir: `/proc/${c.pid}/root` }];
    user = resolveUser(
      opts.user,
      await readImageFile(etc, "/etc/passwd"),
      await readImageFile(etc, "/etc/group"),
    );
  }
  const cgroup = openCgroup(c.id, { parent: c.cgroupParent });
  const plan = buildExecPlan(spec, c.pid, cgroup?.procsFiles ?? [], opts, user);
  const execution = new Execution(plan, {
    trace: false,
    planFile: `${containerPaths(root, c.id).dir}/exec-plan.txt`,
  });
  const forward = (sig: NodeJS.Signals) => () => execution.signal(sig);
  const handlers = (["SIGTERM", "SIGHUP"] as NodeJS.Signals[]).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  if (process.stdin.isTTY) process.on("SIGINT", () => {});
  try {
    const result = await execution.done;
    if (result.failure && !result.started) {
      const f = result.failure;
      if (f.call === "execve") {
        const program = opts.command[0];
        if (f.errno === 2)
          throw new MiniboxError(
            `exec: "${program}": executable file not found in $PATH`,
            undefined,
            127,
          );
        throw new MiniboxError(
          `exec: "${program}": ${errnoText(f.errno).toLowerCase()}`,
          undefined,
          126,
        );
      }
      throw new MiniboxError(
        `${f.step?.describe ?? f.call}: ${f.call}: ${errnoText(f.errno)}`,
        undefined,
        126,
      );
    }
    return result.exitCode ?? (result.signal !== undefined ? 128 + result.signal : 1);
  } finally {
    for (const [s, h] of handlers) process.off(s, h);
  }
}
