/**
 * `--security-opt`, as Docker takes it (docker/cli opts/parse.go
 * parseSecurityOpts, then the daemon's parseSecurityOpt): `KEY=VALUE` (or the
 * old `KEY:VALUE`), `no-new-privileges` alone. Pure: a seccomp profile file is
 * read through `read`, which the CLI gives.
 *
 * - `seccomp=unconfined` no filter; `seccomp=builtin` minibox's default;
 *   `seccomp=FILE` a profile in Docker's or the OCI form. Docker records the
 *   file's JSON (compacted) in HostConfig.SecurityOpt, not its path: so does
 *   minibox, and the container keeps running the same profile whatever
 *   happens to the file.
 * - `no-new-privileges[=BOOL]`: minibox's default is ON (Docker's is off), a
 *   deliberate safer default; `=false` turns it off.
 * - `label=…`, `apparmor=…`: accepted with a warning. minibox has no LSM
 *   support; Docker itself ignores them on a host without SELinux or
 *   AppArmor, and compose files and scripts pass `label=disable` or
 *   `apparmor=unconfined` routinely — refusing would break them without
 *   protecting anything, while the warning says that a confining profile
 *   asked for is not applied.
 * - anything else: Docker's error, `invalid --security-opt 2: "…"`.
 */
import { MiniboxError } from "../errors.js";
import { parseProfile, type SeccompProfile } from "./seccomp/profile.js";

export interface SecurityOptions {
  /** undefined: minibox's default profile. */
  seccomp?: SeccompProfile | "unconfined";
  noNewPrivileges: boolean;
  /** HostConfig.SecurityOpt, Docker's strings (a profile file's compacted JSON in place of its path). */
  securityOpt: string[];
  /** One line each, for stderr (label/apparmor ignored). */
  warnings: string[];
}

/** Go's strconv.ParseBool, which Docker's no-new-privileges=VALUE goes through. */
const BOOLS: Record<string, boolean> = {
  "1": true,
  t: true,
  T: true,
  TRUE: true,
  true: true,
  True: true,
  "0": false,
  f: false,
  F: false,
  FALSE: false,
  false: false,
  False: false,
};

function splitOption(opt: string): [key: string, value: string | undefined] {
  let sep = opt.indexOf("=");
  if (sep < 0 && opt !== "no-new-privileges") sep = opt.indexOf(":");
  return sep < 0 ? [opt, undefined] : [opt.slice(0, sep), opt.slice(sep + 1)];
}

const HINT = "use seccomp=unconfined|builtin|PROFILE.json or no-new-privileges[=true|false]";

export function parseSecurityOpts(
  values: readonly string[],
  read: (path: string) => string,
): SecurityOptions {
  const out: SecurityOptions = { noNewPrivileges: true, securityOpt: [], warnings: [] };
  for (const opt of values) {
    const [key, value] = splitOption(opt);
    if (key === "no-new-privileges" && value === undefined) {
      out.securityOpt.push(opt);
      continue;
    }
    if (!value) throw new MiniboxError(`Invalid --security-opt: ${JSON.stringify(opt)}`, HINT);
    out.securityOpt.push(applyOption(out, opt, key, value, read));
  }
  return out;
}

/** One KEY=VALUE: its effect on `out`, and the string inspect records for it. */
function applyOption(
  out: SecurityOptions,
  opt: string,
  key: string,
  value: string,
  read: (path: string) => string,
): string {
  switch (key) {
    case "seccomp":
      return applySeccomp(out, value, read) ?? opt;
    case "no-new-privileges": {
      const on = BOOLS[value];
      if (on === undefined) throw unknownOption(opt);
      out.noNewPrivileges = on;
      return opt;
    }
    case "label":
    case "apparmor":
      out.warnings.push(
        `WARNING: minibox has no ${key === "label" ? "SELinux" : "AppArmor"} support: --security-opt ${opt} is ignored`,
      );
      return opt;
    default:
      throw unknownOption(opt);
  }
}

function unknownOption(opt: string): MiniboxError {
  return new MiniboxError(`invalid --security-opt 2: ${JSON.stringify(opt)}`, HINT);
}

/** The profile asked for; a file's compacted JSON for inspect (undefined: record the option as given). */
function applySeccomp(
  out: SecurityOptions,
  value: string,
  read: (path: string) => string,
): string | undefined {
  if (value === "unconfined" || value === "builtin") {
    out.seccomp = value === "unconfined" ? "unconfined" : undefined;
    return undefined;
  }
  const text = read(value);
  out.seccomp = parseProfile(text, value);
  return `seccomp=${JSON.stringify(JSON.parse(text))}`;
}
