/**
 * The Dockerfile instructions that change only the image config (ENV, LABEL,
 * WORKDIR, USER, STOPSIGNAL, EXPOSE, VOLUME, CMD, ENTRYPOINT, SHELL, ARG,
 * HEALTHCHECK): each makes an image with no layer, and a history entry in
 * Docker's "#(nop)" form.
 */
import { posix } from "node:path";
import { MiniboxError } from "../errors.js";
import type { ImageConfig } from "../image/manifest.js";
import { parseGoDuration } from "../runtime/health/duration.js";
import type { Instruction } from "./dockerfile.js";
import { expand } from "./shell-words.js";

export type ContainerConfig = NonNullable<ImageConfig["config"]>;
type Vars = Record<string, string | undefined>;
type Of<K extends Instruction["kind"]> = Extract<Instruction, { kind: K }>;

/** Metadata instructions, as Docker's history shows them ("/bin/sh -c #(nop)  CMD [...]"). */
export function nop(raw: string): string {
  return `/bin/sh -c #(nop)  ${raw}`;
}

/**
 * Apply `ins` to `c` (a copy of `base`'s config, which it may change);
 * returns the instruction's text for the history entry.
 */
export function applyConfigStep(
  ins: Instruction,
  c: ContainerConfig,
  base: ImageConfig,
  vars: Vars,
): string {
  switch (ins.kind) {
    case "ENV":
      setEnv(c, ins.pairs, vars);
      break;
    case "LABEL":
      c.Labels = { ...(c.Labels ?? {}) };
      for (const [k, v] of ins.pairs) c.Labels[expand(k, vars)] = expand(v, vars);
      break;
    case "WORKDIR":
      c.WorkingDir = posix.resolve(c.WorkingDir || "/", expand(ins.value, vars));
      break;
    case "USER":
      c.User = expand(ins.value, vars);
      break;
    case "STOPSIGNAL":
      c.StopSignal = expand(ins.value, vars);
      break;
    case "EXPOSE":
      setExposedPorts(c, ins.values, vars);
      break;
    case "VOLUME":
      c.Volumes = { ...(c.Volumes ?? {}) };
      for (const v of ins.values) c.Volumes[expand(v, vars)] = {};
      break;
    case "CMD":
    case "ENTRYPOINT":
      return setCommand(ins, c, base);
    case "SHELL":
      c.Shell = ins.command;
      break;
    case "ARG":
      break;
    case "HEALTHCHECK":
      c.Healthcheck = healthcheckOf(ins);
      break;
    default:
      throw new MiniboxError(`line ${ins.line}: ${ins.kind} is not supported`);
  }
  return ins.raw;
}

function setEnv(c: ContainerConfig, pairs: [string, string][], vars: Vars): void {
  const list = new Map((c.Env ?? []).map((e) => [e.split("=")[0] as string, e]));
  for (const [k, v] of pairs) list.set(expand(k, vars), `${expand(k, vars)}=${expand(v, vars)}`);
  c.Env = [...list.values()];
}

function setExposedPorts(c: ContainerConfig, values: string[], vars: Vars): void {
  c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
  for (const p of values) {
    const port = expand(p, vars);
    c.ExposedPorts[port.includes("/") ? port : `${port}/tcp`] = {};
  }
}

/** CMD or ENTRYPOINT; the history shows the exec form, whatever was written. */
function setCommand(ins: Of<"CMD" | "ENTRYPOINT">, c: ContainerConfig, base: ImageConfig): string {
  const argv = ins.shell ? [...shellOf(c), ins.command.join(" ")] : ins.command;
  if (ins.kind === "CMD") c.Cmd = argv;
  else {
    c.Entrypoint = argv;
    // Docker: a new ENTRYPOINT resets a CMD inherited from the base image.
    if (
      base.config?.Entrypoint === undefined ||
      JSON.stringify(base.config?.Entrypoint) !== JSON.stringify(argv)
    ) {
      c.Cmd = null;
    }
  }
  return `${ins.kind} ${JSON.stringify(argv)}`;
}

/** The shell of shell-form commands: SHELL's, else /bin/sh -c. */
export function shellOf(c: ContainerConfig): string[] {
  const shell = c.Shell;
  return Array.isArray(shell) && shell.length ? (shell as string[]) : ["/bin/sh", "-c"];
}

function healthcheckOf(ins: Of<"HEALTHCHECK">): Record<string, unknown> {
  if (ins.none) return { Test: ["NONE"] };
  return {
    Test: [ins.shell ? "CMD-SHELL" : "CMD", ...(ins.command ?? [])],
    ...healthcheckTimings(ins.options, ins.line),
  };
}

/** HEALTHCHECK --interval=30s …: Docker stores durations in nanoseconds. */
function healthcheckTimings(options: Record<string, string>, line: number): Record<string, number> {
  const fields: Record<string, string> = {
    interval: "Interval",
    timeout: "Timeout",
    "start-period": "StartPeriod",
    "start-interval": "StartInterval",
  };
  const out: Record<string, number> = {};
  for (const [flag, value] of Object.entries(options)) {
    if (flag === "retries") out.Retries = retriesOf(value, line);
    else if (fields[flag]) out[fields[flag]] = durationNs(value, line);
  }
  return out;
}

function retriesOf(text: string, line: number): number {
  if (!/^\d+$/.test(text)) {
    throw new MiniboxError(
      `line ${line}: invalid --retries ${JSON.stringify(text)}`,
      "use a whole number of 0 or more",
    );
  }
  return Number(text);
}

/** A Go duration ("1m30s", "500ms") in nanoseconds. */
function durationNs(text: string, line: number): number {
  const ns = parseGoDuration(text);
  if (ns === undefined || ns < 0) {
    throw new MiniboxError(
      `line ${line}: invalid duration ${JSON.stringify(text)}`,
      "use e.g. 30s or 1m30s",
    );
  }
  return ns;
}
