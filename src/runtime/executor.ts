/**
 * Running native/minibox-exec: hand it a plan, read back what happens.
 *
 * Why spawn a program rather than call C through koffi: the steps between
 * clone and execve need a single-threaded process, and Node never is one. A
 * spawned executor is also the container init's parent, so it can wait for
 * it, relay a terminal and forward signals without Node in the loop.
 *
 * Descriptors given to the executor: 0-2 the container's stdio (inherited,
 * never copied through Node), 3 the plan, 4 status lines back, 5 control.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import type { Readable, Writable } from "node:stream";
import { getSystemErrorMap } from "node:util";
import { MiniboxError } from "../errors.js";
import { nativeProgram } from "../sys/native.js";
import { type Plan, type PlanStep, serialisePlan } from "./plan.js";

export function executorPath(): string {
  return nativeProgram("minibox-exec", "MINIBOX_EXEC", "executor");
}

export interface ExecutorEvents {
  /** A step finished: the plan step, when it started and how long it took (ms since the executor started). */
  onTrace?: (step: PlanStep, startMs: number, durationMs: number, extra: string) => void;
  /** The init's host PID, once cloned (before it runs anything of its own). */
  onPid?: (pid: number) => void | Promise<void>;
}

export interface ExecutorResult {
  /** Set when the container's program ran and ended. */
  exitCode?: number;
  signal?: number;
  /** Set when a step failed before the program started. */
  failure?: { step?: PlanStep; call: string; errno: number; detail: string };
  pid?: number;
  started: boolean;
  /** minibox-runc create: the init waits for `start`, and the executor has let go of it. */
  created?: boolean;
}

/**
 * strerror-like text for an errno the executor reported, from libuv's own
 * table (Node's util.getSystemErrorMap): exact for every errno, and no FFI
 * on the run path. libuv's messages are lower case; capitalised like glibc's.
 */
export function errnoText(errno: number): string {
  const message = getSystemErrorMap().get(-errno)?.[1];
  return message ? message[0]?.toUpperCase() + message.slice(1) : `errno ${errno}`;
}

export interface ExecutionOptions {
  trace: boolean;
  events?: ExecutorEvents;
  stdio?: "inherit" | "ignore";
  /** Keep a copy of the plan here (the container's plan.txt, for learners). */
  planFile?: string;
  /** -d: the executor stays behind as the container's monitor (see native/monitor.c). */
  detach?: boolean;
  /**
   * minibox-runc create and exec --detach: the executor exits once the child
   * waits for `start` (native/steps-oci.c) or runs its program; the caller's
   * subreaper adopts the child.
   */
  letGo?: boolean;
  /** minibox-runc: our descriptors 3..3+N-1 handed to the executor (at 6..), for the program. */
  passFds?: number;
}

/** What the executor's command line and descriptors depend on: known before its plan is. */
export type SpawnOptions = Pick<
  ExecutionOptions,
  "trace" | "detach" | "letGo" | "stdio" | "passFds"
> & {
  /** A cgroup.procs file to warm up at once, before the plan arrives (native/cgroup-warm.c). */
  warmCgroup?: string;
};

/** An executor spawned ahead of its plan (see Execution's `early`). */
export interface EarlyExecutor {
  child: ChildProcess;
  /** performance.now() just before the spawn: the executor's trace times count from it. */
  spawnedAt: number;
  /** Watched from the spawn on: it may fail or exit before its Execution exists. */
  end: Promise<ChildEnd>;
  /** Spawned with --detach (it must match the Execution's). */
  detach: boolean;
}

/** How the executor process ended: its spawn failed, or it closed. */
type ChildEnd = Error | { code: number | null; signal: NodeJS.Signals | null };

function watchEnd(child: ChildProcess): Promise<ChildEnd> {
  return new Promise((resolve) => {
    child.once("error", resolve);
    child.once("close", (code, signal) => resolve({ code, signal }));
  });
}

/**
 * Spawn the executor before its plan is built: it starts the cgroup warm-up
 * at once (the first cgroup move waits for an RCU grace period; see
 * native/cgroup-warm.c) and then waits on descriptor 3 for the plan.
 */
export function spawnEarly(options: SpawnOptions): EarlyExecutor {
  const spawnedAt = performance.now();
  const child = spawnExecutor(options);
  return { child, spawnedAt, end: watchEnd(child), detach: options.detach === true };
}

/**
 * An early executor whose plan will never come (what came after the spawn
 * failed): the plan pipe's EOF makes it reap its warm-up child and exit;
 * resolves once it has, so the cgroup it warmed can be removed.
 */
export function abandonEarly(early: EarlyExecutor): Promise<void> {
  const plan = early.child.stdio[3] as Writable | null;
  plan?.on("error", () => undefined);
  plan?.end();
  // 'close' waits for every pipe to end, so drain what it may report.
  (early.child.stdio[4] as Readable | null)?.resume();
  return early.end.then(() => undefined);
}

function spawnExecutor(options: SpawnOptions): ChildProcess {
  const args = [
    ...(options.trace ? ["--trace"] : []),
    ...(options.detach ? ["--detach"] : []),
    ...(options.letGo ? ["--let-go"] : []),
    ...(options.warmCgroup ? ["--warm-cgroup", options.warmCgroup] : []),
  ];
  const stdio = options.detach ? "ignore" : (options.stdio ?? "inherit");
  // The caller's descriptors for the program go after ours (native PASSED_FDS_BASE).
  const passed = Array.from({ length: options.passFds ?? 0 }, (_, i) => 3 + i);
  return spawn(executorPath(), args, {
    stdio: [stdio, stdio, stdio, "pipe", "pipe", "pipe", ...passed],
    detached: options.detach,
  });
}

/** Calls `onLine` for each complete line read from `stream`. */
function eachLine(stream: Readable, onLine: (line: string) => void): void {
  let partial = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    const lines = (partial + chunk).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) onLine(line);
  });
}

export class Execution {
  readonly child: ChildProcess;
  private control: Writable;
  readonly done: Promise<ExecutorResult>;
  /**
   * The container's program has ended (its exit status or signal reported),
   * or the executor is gone: what is known then is final. The executor still
   * has to exit after that line. Its private mount namespace (overlay,
   * idmapped layers, /dev, binds) is gone by then: it left it once the
   * program started (native/steps-mount.c leave_private_mntns), and the
   * init's own copy died with the init. So the caller can act on this line,
   * --rm's removal of the container's filesystem included, and wait for
   * `done` only where it must (before returning).
   */
  readonly ended: Promise<ExecutorResult>;
  private markEnded: () => void = () => undefined;
  private readonly result: ExecutorResult = { started: false };
  /** onPid callbacks, in order: the result waits for them. */
  private pending: Promise<void> = Promise.resolve();

  /** `early`: the executor spawned already with the same options (spawnEarly), waiting for this plan. */
  constructor(
    plan: Plan,
    private readonly options: ExecutionOptions,
    early?: EarlyExecutor,
  ) {
    const { text, byLine } = serialisePlan(plan);
    if (options.planFile) writeFileSync(options.planFile, text);
    this.child = early?.child ?? spawnExecutor(options);
    const end = early?.end ?? watchEnd(this.child);
    const planPipe = this.child.stdio[3] as Writable;
    const statusPipe = this.child.stdio[4] as Readable;
    this.control = (this.child.stdio as unknown as Writable[])[5] as Writable;
    // The executor may be gone before it reads the plan or a control byte: its exit says why.
    this.control.on("error", () => undefined);
    planPipe.on("error", () => undefined);
    planPipe.end(text);
    eachLine(statusPipe, (line) => this.onStatus(line, byLine));
    this.done = this.waitForClose(end);
    const exitLine = new Promise<void>((resolve) => {
      this.markEnded = resolve;
    });
    // onPid callbacks (state.json, the start event) finish before the end is acted on.
    this.ended = Promise.race([exitLine.then(() => this.pending), this.done]).then(
      () => this.result,
    );
    // A rejected `done` is the caller's to handle, through `done` or `ended`.
    this.ended.catch(() => undefined);
  }

  /** One status line from the executor (descriptor 4: pid, trace, started, error, exit, signal). */
  private onStatus(line: string, byLine: Map<number, PlanStep>): void {
    const [kind, ...rest] = line.split(" ");
    const result = this.result;
    if (kind === "trace") {
      const [index, start, duration, ...extra] = rest;
      const s = byLine.get(Number(index));
      if (s) this.options.events?.onTrace?.(s, Number(start), Number(duration), extra.join(" "));
    } else if (kind === "pid") {
      result.pid = Number(rest[0]);
      this.pending = this.pending.then(() => this.options.events?.onPid?.(result.pid as number));
    } else if (kind === "created") {
      result.created = true;
    } else if (kind === "started") {
      result.started = true;
      this.onStarted?.(result);
    } else if (kind === "error") {
      const [index, , call, errno, ...detail] = rest;
      const step = byLine.get(Number(index));
      result.failure = { step, call: call ?? "?", errno: Number(errno), detail: detail.join(" ") };
    } else if (kind === "exit") {
      result.exitCode = Number(rest[0]);
      this.markEnded();
    } else if (kind === "signal") {
      result.signal = Number(rest[0]);
      this.markEnded();
    }
  }

  private waitForClose(end: Promise<ChildEnd>): Promise<ExecutorResult> {
    const result = this.result;
    return new Promise((resolve, reject) => {
      end.then(async (how) => {
        if (how instanceof Error) {
          reject(new MiniboxError(`cannot start the executor: ${how.message}`));
          return;
        }
        const { code, signal } = how;
        await this.pending;
        const reported = result.exitCode !== undefined || result.signal !== undefined;
        if (!reported && !result.failure && !result.created) {
          // No report at all: the executor itself died (e.g. SIGKILL).
          result.failure = {
            call: "executor",
            errno: 0,
            detail: signal ? `killed by ${signal}` : `exited with ${code}`,
          };
        }
        resolve(result);
      });
    });
  }

  private onStarted?: (result: ExecutorResult) => void;

  /**
   * -d: resolves once the container's program runs (or the start failed);
   * then minibox lets go of the executor, which goes on as the monitor.
   */
  startedOrDone(): Promise<ExecutorResult> {
    return new Promise((resolve, reject) => {
      this.onStarted = (result) => {
        this.child.unref();
        for (const pipe of this.child.stdio) pipe?.destroy();
        resolve(result);
      };
      this.done.then(resolve, reject);
    });
  }

  /** Release a plan waiting at `wait-go`. */
  go(): void {
    this.control.write("g");
  }

  /** Send a signal to the executor, which forwards it to the container's init. */
  signal(sig: NodeJS.Signals): void {
    try {
      this.child.kill(sig);
    } catch {
      // already gone
    }
  }
}
