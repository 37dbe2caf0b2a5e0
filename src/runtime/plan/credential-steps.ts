/**
 * Dropping privilege, the last steps before the program: resource limits,
 * supplementary groups, the capability bounding set, the user, the
 * capabilities kept, no_new_privs, the seccomp filter. One sequence for
 * `run` and `exec`.
 *
 * The order matters: setgroups and the uid/gid switch need CAP_SETGID and
 * CAP_SETUID, so they come before the capabilities are cut; the bounding set
 * is cut before the switch, while CAP_SETPCAP is still held. Loading a
 * seccomp filter takes no_new_privs or CAP_SYS_ADMIN: with no_new_privs it
 * is the last step (the filter then judges only the program and the init);
 * without, it comes before any capability is dropped, as runc does, so the
 * filter must allow the privilege-dropping calls that follow (a profile
 * that refuses setgroups or capset fails the start, as with runc).
 */
import { MiniboxError } from "../../errors.js";
import type { CompiledFilter } from "../seccomp/compile.js";
import type { SpecCapabilities, SpecProcess, SpecRlimit } from "../spec.js";
import { capNames } from "./capabilities.js";
import type { RlimitStep, SeccompStep, Step } from "./steps.js";

/** RLIMIT_* numbers from linux/resource.h. */
const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
};

export interface Credentials {
  user: SpecProcess["user"];
  capabilities?: Partial<SpecCapabilities>;
  noNewPrivileges?: boolean;
  /** Set by `run` (the spec's rlimits); `exec` keeps the limits it inherits. */
  rlimits?: SpecRlimit[];
  /** The compiled linux.seccomp (absent: unconfined). */
  seccomp?: CompiledFilter;
}

export function seccompStep(f: CompiledFilter): SeccompStep {
  return {
    op: "seccomp",
    program: Buffer.from(f.program).toString("hex"),
    describe: `seccomp filter: ${f.instructions} instructions, ${f.allowed} syscalls allowed`,
  };
}

function rlimitSteps(rlimits: SpecRlimit[]): RlimitStep[] {
  return rlimits.map(({ type, soft, hard }) => {
    const resource = RLIMITS[type];
    if (resource === undefined) throw new MiniboxError(`unknown rlimit ${type}`);
    return {
      op: "rlimit",
      resource,
      soft,
      hard,
      describe: `setrlimit ${type} soft=${soft} hard=${hard}`,
    };
  });
}

export function credentialSteps(c: Credentials): Step[] {
  const { uid, gid } = c.user;
  const gids = c.user.additionalGids ?? [];
  const caps = c.capabilities ?? {};
  const filter = c.seccomp ? [seccompStep(c.seccomp)] : [];
  const steps: Step[] = [
    // Before the filter: a profile need not allow close_range (runtime-tools'
    // does not), and nothing minibox opened may reach the program.
    { op: "closefds", describe: "mark every descriptor above 2 close-on-exec" },
    ...rlimitSteps(c.rlimits ?? []),
    ...(c.noNewPrivileges ? [] : filter),
    { op: "groups", gids, describe: `setgroups [${gids.join(", ")}]` },
    {
      op: "bounding",
      keep: caps.bounding ?? [],
      describe: `capability bounding set: ${capNames(caps.bounding)}`,
    },
    { op: "user", uid, gid, describe: `switch to uid ${uid}, gid ${gid}` },
    {
      op: "caps",
      effective: caps.effective ?? [],
      permitted: caps.permitted ?? [],
      inheritable: caps.inheritable ?? [],
      ambient: caps.ambient ?? [],
      describe: `effective capabilities: ${capNames(caps.effective)}`,
    },
  ];
  if (c.noNewPrivileges) {
    steps.push({ op: "no-new-privs", describe: "prctl(PR_SET_NO_NEW_PRIVS)" }, ...filter);
  }
  return steps;
}
