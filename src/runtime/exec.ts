/**
 * `exec`: a new process inside a running container. The executor joins the
 * container's cgroup and namespaces (setns — impossible from Node, which is
 * multi-threaded), forks so the child lands in the container's PID
 * namespace, and the child takes the container's identity: its user,
 * capabilities, no_new_privs, seccomp filter and environment, as configured
 * in config.json, with -u, -w, -e and --privileged applied on top.
 */
import { MiniboxError } from "../errors.js";
import { containerPaths, rootLayout } from "../layout.js";
import { openCgroup } from "./cgroups/index.js";
import { Execution } from "./executor.js";
import { explainFailure } from "./failure.js";
import { type ContainerView, readSpec } from "./lifecycle.js";
import { credentialSteps } from "./plan/credential-steps.js";
import { chdirStep, execSteps } from "./plan/exec-steps.js";
import { becomeNamespaceRootStep } from "./plan/namespace-steps.js";
import { ptyStep } from "./plan/output-steps.js";
import { consoleSteps, stdinSteps } from "./plan/stdio-steps.js";
import { type Step, toPlan } from "./plan/steps.js";
import { filterFor, type Plan } from "./plan.js";
import { callerCapabilities } from "./privileged.js";
import { readImageFile } from "./rootfs.js";
import { compiledSeccomp } from "./seccomp/cache.js";
import type { CompiledFilter } from "./seccomp/compile.js";
import { forwardSignals } from "./signals.js";
import { privilegedCapabilities, type Spec, workdirOption } from "./spec.js";
import { resolveGroupAdd, resolveUser } from "./user.js";

export interface ExecOptions {
  command: string[];
  tty: boolean;
  interactive: boolean;
  user?: string;
  workdir?: string;
  env: string[];
  detach: boolean;
  /** --privileged: every capability (the container's seccomp filter still applies, as in Docker). */
  privileged?: boolean;
  /** minibox's own bounding set (privileged.ts callerCapabilities), for --privileged. */
  callerCapabilities?: readonly string[];
}

/**
 * The order in which to join: user first, so the rest are joined with the
 * rights of the container's root; mount last, as it also moves the root
 * and working directory into the container.
 */
const NAMESPACES = ["user", "cgroup", "ipc", "uts", "net", "pid", "mnt"];

/** The container's namespaces by their /proc/<pid>/ns names. */
export function ownNamespaces(spec: Spec): Set<string> {
  return new Set(
    (spec.linux.namespaces ?? []).map((n) =>
      n.type === "mount" ? "mnt" : n.type === "network" ? "net" : n.type,
    ),
  );
}

/** Into the running container: its cgroup, its namespaces, then a fork into its PID namespace. */
export function joinSteps(
  pid: number,
  own: Set<string>,
  cgroupProcs: string[],
  tty: boolean,
): Step[] {
  const join = NAMESPACES.filter((ns) => own.has(ns));
  return [
    ...cgroupProcs.map(
      (file): Step => ({
        op: "write",
        path: file,
        data: "0",
        describe: `join the container's cgroup: write 0 (ourselves) to ${file}`,
      }),
    ),
    {
      op: "setns",
      pid,
      namespaces: join,
      describe: `setns into the namespaces of PID ${pid}: ${join.join(" ")}`,
    },
    ...(tty ? [ptyStep()] : []),
    { op: "clone", flags: 0, describe: "fork: the child is in the container's PID namespace" },
  ];
}

/**
 * The container's capabilities, or with --privileged every one (Docker: in
 * the container's user namespace all, else all minibox holds); only root
 * keeps effective and permitted ones (as generateSpec decides for `run`).
 */
function capabilitiesOf(spec: Spec, user: { uid: number }, opts: ExecOptions) {
  const caps = spec.process.capabilities;
  if (opts.privileged) {
    const userns = (spec.linux.namespaces ?? []).some((n) => n.type === "user");
    return privilegedCapabilities(userns, opts.callerCapabilities, user.uid);
  }
  return user.uid === 0 ? caps : { ...caps, effective: [], permitted: [] };
}

export function buildExecPlan(
  spec: Spec,
  pid: number,
  cgroupProcs: string[],
  opts: ExecOptions,
  user: { uid: number; gid: number; additionalGids: number[] },
  seccomp?: CompiledFilter,
): Plan {
  const own = ownNamespaces(spec);
  const child: Step[] = [
    ...(own.has("user") ? [becomeNamespaceRootStep()] : []),
    ...consoleSteps(opts.tty),
    ...stdinSteps(opts.tty, opts.interactive),
    chdirStep(opts.workdir ? workdirOption(opts.workdir) : spec.process.cwd),
    ...credentialSteps({
      user,
      capabilities: capabilitiesOf(spec, user, opts),
      noNewPrivileges: spec.process.noNewPrivileges,
      // The filter resolved for the container when it was created (none if unconfined).
      seccomp: filterFor(spec, seccomp),
    }),
    ...execSteps({ argv: opts.command, env: mergeEnv(spec.process.env, opts.env, opts.tty) }),
  ];
  return toPlan({
    setup: joinSteps(pid, own, cgroupProcs, opts.tty),
    parent: [{ op: "report-pid", describe: "tell minibox the PID" }],
    child,
  });
}

/** The container's environment, TERM with -t, then -e: a later value of a name replaces an earlier one in place. */
export function mergeEnv(base: string[], extra: string[], tty: boolean): string[] {
  const out = new Map(base.map((e) => [e.split("=")[0] as string, e]));
  if (tty) out.set("TERM", "TERM=xterm");
  for (const e of extra) out.set(e.split("=")[0] as string, e);
  return [...out.values()];
}

/**
 * `exec -u`: resolved in the container's own files as they are now (its
 * upper layer included), plus the container's --group-add, which applies to
 * every process in it, as in Docker.
 */
async function execUser(c: ContainerView, spec: string) {
  const etc = [{ dir: `/proc/${c.pid}/root` }];
  const group = await readImageFile(etc, "/etc/group");
  const user = resolveUser(spec, await readImageFile(etc, "/etc/passwd"), group);
  const added = resolveGroupAdd(c.groupAdd ?? [], group);
  return { ...user, additionalGids: [...new Set([...user.additionalGids, ...added])] };
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
  const user = opts.user === undefined ? spec.process.user : await execUser(c, opts.user);
  const cgroup = openCgroup(c.id, { parent: c.cgroupParent });
  const callerCaps = opts.privileged ? callerCapabilities() : undefined;
  const plan = buildExecPlan(
    spec,
    c.pid,
    cgroup?.procsFiles ?? [],
    { ...opts, callerCapabilities: callerCaps },
    user,
    spec.linux.seccomp &&
      (await compiledSeccomp(rootLayout(root).seccompCache, spec.linux.seccomp, process.arch))
        .filter,
  );
  const execution = new Execution(plan, {
    trace: false,
    planFile: containerPaths(root, c.id).execPlan,
  });
  const stopForwarding = forwardSignals(execution, ["SIGTERM", "SIGHUP"]);
  try {
    const result = await execution.done;
    if (result.failure && !result.started) {
      // Docker: an exec that cannot start is 126 (not found 127), never 125.
      const { code, message } = explainFailure(result.failure, opts.command[0], 126);
      throw new MiniboxError(message, undefined, code);
    }
    return result.exitCode ?? (result.signal !== undefined ? 128 + result.signal : 1);
  } finally {
    stopForwarding();
  }
}
