/**
 * `minibox-runc exec`: a process in a running container, described by a
 * process.json (`--process`, as containerd's shim and conmon pass it) or by
 * flags over the container's own process (`exec ID CMD…`, as runc). The
 * executor joins the init's cgroup and namespaces and forks into its PID
 * namespace (src/runtime/exec.ts's steps); the process gets the container's
 * seccomp filter, as runc gives it. With --detach the executor lets go of it
 * once it runs, and the caller's subreaper adopts it.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { MiniboxError } from "../../errors.js";
import { joinSteps, mergeEnv, ownNamespaces } from "../exec.js";
import { Execution } from "../executor.js";
import { explainFailure } from "../failure.js";
import { credentialSteps } from "../plan/credential-steps.js";
import { chdirStep, execSteps } from "../plan/exec-steps.js";
import { becomeNamespaceRootStep } from "../plan/namespace-steps.js";
import { consoleSocketStep } from "../plan/output-steps.js";
import { consoleSteps } from "../plan/stdio-steps.js";
import { type Step, toPlan } from "../plan/steps.js";
import { filterFor } from "../plan.js";
import { compiledSeccomp } from "../seccomp/cache.js";
import type { Spec, SpecProcess } from "../spec.js";
import { processOf } from "./bundle-spec.js";
import { hostLsms } from "./lsm.js";
import { writePidFile } from "./pid-file.js";
import { containerDir, readRecord, seccompCacheDir, specFile, statusOf } from "./runtime-state.js";

export interface ExecFlags {
  process?: string;
  detach?: boolean;
  pidFile?: string;
  consoleSocket?: string;
  tty?: boolean;
  cwd?: string;
  env: string[];
  user?: string;
  cap: string[];
  noNewPrivs?: boolean;
  /** --preserve-fds: our descriptors 3..3+N-1 go to the process. */
  passFds?: number;
}

/** process.json, checked like config.json's process (errors name "process.json: …"). */
function processFromFile(file: string): SpecProcess {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new MiniboxError(`--process ${file}: ${(err as Error).message}`);
  }
  try {
    return processOf(json, hostLsms());
  } catch (err) {
    throw new MiniboxError(
      (err as Error).message.replace(/^config\.json: process/, `process.json ${file}: `),
    );
  }
}

/** "UID[:GID]" of --user. */
function parseUser(text: string) {
  const m = /^(\d+)(?::(\d+))?$/.exec(text);
  if (!m) throw new MiniboxError(`invalid --user ${JSON.stringify(text)}: use UID[:GID] (numbers)`);
  return { uid: Number(m[1]), gid: Number(m[2] ?? 0) };
}

/** runc's flag form: the container's process with the flags over it. */
function processFromFlags(spec: Spec, command: string[], flags: ExecFlags): SpecProcess {
  if (command.length === 0) throw new MiniboxError("exec: give --process FILE or a command");
  const user = flags.user ? { ...parseUser(flags.user), additionalGids: [] } : spec.process.user;
  const caps = spec.process.capabilities;
  const add = (set: string[]) => [...new Set([...set, ...flags.cap])];
  return {
    ...spec.process,
    terminal: flags.tty === true,
    args: command,
    env: mergeEnv(spec.process.env, flags.env, false),
    cwd: flags.cwd ?? spec.process.cwd,
    user,
    capabilities: flags.cap.length
      ? {
          ...caps,
          bounding: add(caps.bounding),
          effective: add(caps.effective),
          permitted: add(caps.permitted),
        }
      : caps,
    noNewPrivileges: flags.noNewPrivs === true || spec.process.noNewPrivileges,
  };
}

function execPlan(
  spec: Spec,
  pid: number,
  cgroupProcs: string[],
  proc: SpecProcess,
  consoleSocket: string | undefined,
  seccomp: Parameters<typeof filterFor>[1],
  passFds: number,
) {
  const own = ownNamespaces(spec);
  const tty = proc.terminal;
  if (tty && !consoleSocket)
    throw new MiniboxError("exec: process.terminal needs --console-socket");
  const setup: Step[] = [
    // Before setns: the socket's path is the caller's, not the container's.
    ...(tty && consoleSocket ? [consoleSocketStep(consoleSocket)] : []),
    ...joinSteps(pid, own, cgroupProcs, false),
  ];
  const child: Step[] = [
    ...(own.has("user") ? [becomeNamespaceRootStep()] : []),
    ...consoleSteps(tty, "the console socket"),
    chdirStep(proc.cwd),
    ...credentialSteps({
      user: proc.user,
      capabilities: proc.capabilities,
      noNewPrivileges: proc.noNewPrivileges,
      rlimits: proc.rlimits.length ? proc.rlimits : undefined,
      seccomp: filterFor(spec, seccomp),
    }),
    ...execSteps({ argv: proc.args, env: proc.env, passFds }),
  ];
  return toPlan({
    setup,
    parent: [{ op: "report-pid", describe: "tell minibox-runc the PID" }],
    child,
  });
}

/** Run the exec; the exit status (foreground) or 0 once the process runs (--detach). */
export async function execProcess(
  root: string,
  id: string,
  command: string[],
  flags: ExecFlags,
): Promise<number> {
  const record = readRecord(root, id);
  const status = statusOf(root, record);
  if (status !== "running" && status !== "created") {
    throw new MiniboxError(`cannot exec in a ${status} container`);
  }
  const spec = JSON.parse(readFileSync(specFile(containerDir(root, id)), "utf8")) as Spec;
  const proc = flags.process
    ? processFromFile(flags.process)
    : processFromFlags(spec, command, flags);
  const seccomp = spec.linux.seccomp
    ? (await compiledSeccomp(seccompCacheDir(root), spec.linux.seccomp, process.arch)).filter
    : undefined;
  const procs = record.cgroupDirs.map((d) => path.join(d, "cgroup.procs"));
  const passFds = flags.passFds ?? 0;
  const plan = execPlan(spec, record.pid, procs, proc, flags.consoleSocket, seccomp, passFds);
  const execution = new Execution(plan, { trace: false, letGo: flags.detach === true, passFds });
  const result = await execution.done;
  if (!result.started) {
    throw new MiniboxError(explainFailure(result.failure, proc.args[0], 126).message);
  }
  if (flags.pidFile && result.pid !== undefined) writePidFile(flags.pidFile, result.pid);
  if (flags.detach) return 0;
  return result.exitCode ?? (result.signal !== undefined ? 128 + result.signal : 255);
}
