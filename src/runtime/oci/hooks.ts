/**
 * OCI hooks (config.md "POSIX-platform Hooks"): each runs as a process of
 * its own, argv from `args` (args[0] being its name), `env` as its whole
 * environment, the container's state as JSON on its stdin; `timeout`
 * seconds at most. A hook that fails stops create and start; after the
 * program runs (poststart) or the container is gone (poststop) a failure is
 * only reported, as the spec asks.
 */
import { spawn } from "node:child_process";
import { MiniboxError } from "../../errors.js";
import type { Hook, HookKind } from "./bundle-spec.js";
import type { OciState } from "./runtime-state.js";

function runHook(kind: HookKind, index: number, hook: Hook, state: OciState): Promise<void> {
  const name = `${kind} hook #${index} (${hook.path})`;
  return new Promise((resolve, reject) => {
    const [argv0, ...args] = hook.args?.length ? hook.args : [hook.path];
    const child = spawn(hook.path, args, {
      argv0,
      env: Object.fromEntries(
        (hook.env ?? []).map((e) => [e.split("=")[0], e.slice(e.indexOf("=") + 1)]),
      ),
      stdio: ["pipe", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr?.on("data", (chunk) => {
      stderr = (stderr + chunk).slice(-500);
    });
    const timer = hook.timeout
      ? setTimeout(() => child.kill("SIGKILL"), hook.timeout * 1000)
      : undefined;
    child.stdin?.on("error", () => undefined); // a hook need not read its stdin
    child.stdin?.end(JSON.stringify(state));
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new MiniboxError(`${name}: cannot run: ${err.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve();
      const why = signal
        ? hook.timeout && signal === "SIGKILL"
          ? `timed out after ${hook.timeout} s`
          : `killed by ${signal}`
        : `exit status ${code}`;
      const said = stderr.trim() ? `: ${stderr.trim().split("\n").pop()}` : "";
      reject(new MiniboxError(`${name} failed: ${why}${said}`));
    });
  });
}

/** Run the hooks of one kind in order; the first failure is thrown. */
export async function runHooks(kind: HookKind, hooks: Hook[] | undefined, state: OciState) {
  for (const [i, hook] of (hooks ?? []).entries()) await runHook(kind, i, hook, state);
}

/** poststart, poststop: a failure is a warning, and the rest still run. */
export async function runHooksWarning(
  kind: HookKind,
  hooks: Hook[] | undefined,
  state: OciState,
  warn: (line: string) => void,
) {
  for (const [i, hook] of (hooks ?? []).entries()) {
    await runHook(kind, i, hook, state).catch((err: Error) => warn(err.message));
  }
}
