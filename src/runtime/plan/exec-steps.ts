/**
 * The program itself: its working directory, its environment and the
 * execve, with no descriptor of minibox's leaking into it. One sequence for
 * `run` and `exec`.
 */
import { MiniboxError } from "../../errors.js";
import type { CommandStep, OneFieldStep, Step } from "./steps.js";

export function chdirStep(path: string): OneFieldStep {
  return { op: "chdir", value: path, describe: `chdir ${path}` };
}

export function execStep(argv: string[]): CommandStep {
  return { op: "exec", argv, describe: `execve ${JSON.stringify(argv)}` };
}

export interface Program {
  argv: string[];
  env: string[];
  /** --init: a minimal init stays PID 1 and reaps; the program runs as its child. */
  init?: boolean;
  /** minibox-runc: how many of the caller's descriptors (from 3 on) the program gets (LISTEN_FDS, --preserve-fds). */
  passFds?: number;
}

/** env, the passed descriptors, init (--init), exec. */
export function execSteps(p: Program): Step[] {
  if (!p.argv.length) throw new MiniboxError("no command specified");
  // closefds is the credentials' first step (credential-steps.ts): before the seccomp filter.
  const steps: Step[] = [
    ...p.env.map((e): Step => ({ op: "env", value: e, describe: `env ${e}` })),
  ];
  if (p.passFds) {
    const last = 2 + p.passFds;
    steps.push({
      op: "pass-fds",
      value: String(p.passFds),
      describe: `the caller's descriptors 3-${last} passed on`,
    });
  }
  if (p.init) {
    steps.push({
      op: "init",
      describe: "fork: a minimal init stays PID 1, the program runs as PID 2",
    });
  }
  steps.push(execStep(p.argv));
  return steps;
}
