/**
 * Where the container's output and exit status go: the terminal (-t), the
 * json-file log, and under -d the exit file and the monitor's exit hook.
 */
import type { PlanContext } from "./context.js";
import type { BareStep, Step } from "./steps.js";

/** -t: the executor receives the pty's master over a socket pair (see the child's console step). */
export function ptyStep(): BareStep {
  return { op: "pty", describe: "socket pair to receive the container's terminal (-t)" };
}

/** minibox-runc --console-socket: the caller's socket, which the child's console step sends the master to. */
export function consoleSocketStep(path: string): Step {
  return { op: "console-socket", value: path, describe: `connect to the console socket ${path}` };
}

/** minibox-runc create: the FIFO the init waits on until `start` (runc's exec.fifo). */
function execFifoStep(path: string): Step {
  return { op: "exec-fifo", value: path, describe: `mkfifo ${path} and hold it open for the init` };
}

function logStep(ctx: PlanContext, log: NonNullable<PlanContext["layout"]["log"]>): Step {
  const { file, maxSize = 0, maxFiles = 1 } = log;
  const rotation = maxSize ? `, rotated at ${maxSize} bytes, ${maxFiles} files kept` : "";
  return {
    op: "log",
    file,
    maxSize,
    maxFiles,
    stream: ctx.spec.process.terminal ? "tty" : "pipes",
    describe: `container output → pipes → ${file} (json-file${rotation})`,
  };
}

function detachSteps(detach: NonNullable<PlanContext["layout"]["detach"]>): Step[] {
  const { exitFile, hook } = detach;
  return [
    { op: "exit-file", value: exitFile, describe: `on exit, write the status to ${exitFile}` },
    { op: "on-exit", argv: hook, describe: `on exit, run ${hook.slice(-2).join(" ")}` },
  ];
}

function healthStep(health: NonNullable<PlanContext["layout"]["health"]>): Step {
  return {
    op: "health",
    ...health,
    describe: `every ${health.intervalMs} ms, run the health check (${health.planFile}) → ${health.stateFile}`,
  };
}

/** pty (-t) or the console socket, the start FIFO, log, exit-file and on-exit (-d), the health check. */
export function outputSteps(ctx: PlanContext): Step[] {
  const { layout } = ctx;
  const terminal = ctx.spec.process.terminal;
  return [
    ...(terminal && !layout.consoleSocket ? [ptyStep()] : []),
    ...(terminal && layout.consoleSocket ? [consoleSocketStep(layout.consoleSocket)] : []),
    ...(layout.startFifo ? [execFifoStep(layout.startFifo)] : []),
    ...(layout.log ? [logStep(ctx, layout.log)] : []),
    ...(layout.detach ? detachSteps(layout.detach) : []),
    ...(layout.health ? [healthStep(layout.health)] : []),
  ];
}
