/**
 * The `run` flags that are pure text: environment (-e, --env-file), labels
 * (--label, --label-file), capability names and --userns. Docker's syntax and
 * rules (docker/cli opts/env.go, opts/envfile.go, oci/caps); no file is read
 * here — the caller passes the contents and the host environment.
 */
import { MiniboxError } from "../errors.js";
import { ALL_CAPABILITIES } from "./spec.js";

export type HostEnv = Readonly<Record<string, string | undefined>>;

/**
 * A Docker env-file: one `NAME=value` a line, the value taken as is (no quote
 * or escape processing, trailing spaces kept); leading whitespace, blank
 * lines and `#` comment lines are ignored; a bare `NAME` takes the host's
 * value, or is dropped when the host has none. A bad name is an error that
 * names the line.
 */
export function parseEnvFile(text: string, hostEnv: HostEnv, source = "env file"): string[] {
  const out: string[] = [];
  for (const { lineNo, line } of keyValueLines(text)) {
    const eq = line.indexOf("=");
    const name = eq < 0 ? line.trimEnd() : line.slice(0, eq);
    const problem = envNameProblem(name);
    if (problem) {
      throw new MiniboxError(
        `${source} line ${lineNo}: ${problem}`,
        "write one NAME=value a line; names cannot start with a digit or contain spaces",
      );
    }
    if (eq >= 0) out.push(line);
    else {
      const value = hostEnv[name];
      if (value !== undefined) out.push(`${name}=${value}`);
    }
  }
  return out;
}

/**
 * One `-e` value: `NAME=value` as is; a bare `NAME` takes the host's value,
 * or gives undefined (nothing is set) when the host has none.
 */
export function parseEnvFlag(value: string, hostEnv: HostEnv): string | undefined {
  const eq = value.indexOf("=");
  const name = eq < 0 ? value : value.slice(0, eq);
  const problem = envNameProblem(name);
  if (problem) {
    throw new MiniboxError(
      `invalid environment variable ${JSON.stringify(value)}: ${problem}`,
      "use -e NAME=value, or -e NAME to pass the host's value",
    );
  }
  if (eq >= 0) return value;
  const host = hostEnv[name];
  return host === undefined ? undefined : `${name}=${host}`;
}

/** Why `name` cannot be an environment variable name, or undefined when it can. */
function envNameProblem(name: string): string | undefined {
  if (name === "") return "no variable name";
  if (/\s/.test(name)) return `variable name ${JSON.stringify(name)} contains whitespace`;
  if (/^\d/.test(name)) return `variable name ${JSON.stringify(name)} starts with a digit`;
  if (name.includes("\0")) return `variable name ${JSON.stringify(name)} contains a NUL byte`;
  return undefined;
}

/**
 * `--cap-add`/`--cap-drop` names, as Docker takes them: any case, with or
 * without the `CAP_` prefix ("net_admin" → "CAP_NET_ADMIN"); "ALL" (any case)
 * stays "ALL".
 */
export function normaliseCapability(name: string): string {
  let cap = name.trim().toUpperCase();
  if (cap === "ALL") return cap;
  if (!cap.startsWith("CAP_")) cap = `CAP_${cap}`;
  if (!ALL_CAPABILITIES.includes(cap)) {
    throw new MiniboxError(
      `unknown capability: ${JSON.stringify(name)}`,
      "use a name from capabilities(7), e.g. NET_ADMIN or CAP_SYS_PTRACE, or ALL",
    );
  }
  return cap;
}

/** `--label key=value` → [key, value]; `--label key` → [key, ""]. */
export function parseLabelFlag(value: string): [string, string] {
  const eq = value.indexOf("=");
  const key = eq < 0 ? value : value.slice(0, eq);
  if (key.trim() === "") {
    throw new MiniboxError(`invalid label ${JSON.stringify(value)}: empty name`, "use KEY=VALUE");
  }
  return [key, eq < 0 ? "" : value.slice(eq + 1)];
}

/**
 * A `--label-file`: the env-file syntax (`key=value` a line, `#` comments,
 * blank lines), a bare `key` meaning an empty value. Later lines win.
 */
export function parseLabelFile(text: string, source = "label file"): Record<string, string> {
  const labels = new Map<string, string>();
  for (const { lineNo, line } of keyValueLines(text)) {
    const eq = line.indexOf("=");
    const key = eq < 0 ? line.trimEnd() : line.slice(0, eq);
    if (/\s/.test(key)) {
      throw new MiniboxError(
        `${source} line ${lineNo}: label name ${JSON.stringify(key)} contains whitespace`,
        "write one key=value a line",
      );
    }
    if (key === "") {
      throw new MiniboxError(
        `${source} line ${lineNo}: no label name`,
        "write one key=value a line",
      );
    }
    labels.set(key, eq < 0 ? "" : line.slice(eq + 1));
  }
  return Object.fromEntries(labels);
}

/** `--userns`: "host" runs without a user namespace; "" (the default) gives a private one. */
export function parseUserns(value: string): "host" | "private" {
  if (value === "host") return "host";
  if (value === "") return "private";
  throw new MiniboxError(
    `invalid --userns value ${JSON.stringify(value)}`,
    "use --userns=host, or leave the flag out for a private user namespace",
  );
}

/**
 * The lines of a key-value file that carry something, numbered from 1: a
 * UTF-8 BOM and each line's "\r" (CRLF files) and leading whitespace removed;
 * blank and `#` lines skipped.
 */
function* keyValueLines(text: string): Generator<{ lineNo: number; line: string }> {
  const raw = text.replace(/^\uFEFF/, "").split("\n");
  for (const [i, r] of raw.entries()) {
    const line = (r.endsWith("\r") ? r.slice(0, -1) : r).trimStart();
    if (line === "" || line.startsWith("#")) continue;
    yield { lineNo: i + 1, line };
  }
}
