/**
 * The OCI seccomp spec compiled to a classic BPF program for
 * seccomp(SECCOMP_SET_MODE_FILTER). Layout:
 *
 *   load arch; one test per architecture the host runs → that arch's block;
 *   any other arch → KILL_PROCESS.
 *   Block: load nr; (x86_64: the x32 bit → EPERM); a binary search over the
 *   syscall numbers — ranges of consecutive numbers with the same outcome are
 *   merged — ending in a RET, or in the argument checks of the rules naming
 *   that syscall (first matching rule in profile order wins, else the
 *   default action).
 *
 * The kernel runs the program on every syscall: the search costs about
 * log2(ranges) comparisons, where a linear list would cost one per syscall.
 */
import { MiniboxError } from "../../errors.js";
import { emitArg, emitHighIsZero, highTestable, type KnownHigh } from "./args.js";
import { BPF, Emitter, encode, type Target } from "./bpf.js";
import type { SeccompAction, SeccompArg, SpecSeccomp } from "./profile.js";
import { ARCHES, type ArchInfo, HOST_ARCHES, X32_SYSCALL_BIT } from "./tables.js";

export interface CompiledFilter {
  /** struct sock_filter[], 8 bytes each, little-endian. */
  program: Uint8Array;
  instructions: number;
  /** Native-arch syscalls allowed, unconditionally or on some arguments. */
  allowed: number;
}

/** The kernel's limit (BPF_MAXINSNS). */
export const MAX_INSTRUCTIONS = 4096;

const RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

/** seccomp_data: nr at 0, arch at 4 (args at 16). */
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
const EPERM = 1;

/** SECCOMP_RET_* for an action; errno defaults to EPERM when absent, as runc. */
export function actionValue(action: SeccompAction, errnoRet?: number): number {
  const data = (errnoRet ?? EPERM) & 0xffff;
  switch (action) {
    case "SCMP_ACT_ALLOW":
      return RET.ALLOW;
    case "SCMP_ACT_ERRNO":
      return (RET.ERRNO | data) >>> 0;
    case "SCMP_ACT_TRACE":
      return (RET.TRACE | data) >>> 0;
    case "SCMP_ACT_KILL_PROCESS":
      return RET.KILL_PROCESS;
    case "SCMP_ACT_KILL":
    case "SCMP_ACT_KILL_THREAD":
      return RET.KILL_THREAD;
    case "SCMP_ACT_TRAP":
      return RET.TRAP;
    case "SCMP_ACT_LOG":
      return RET.LOG;
  }
}

/**
 * What the filter does with one syscall number: its conditional rules in
 * profile order, then `fallback` (the first unconditional rule's action, or
 * the default). The same outcome for neighbouring numbers makes one range.
 */
interface Outcome {
  rules: { args: SeccompArg[]; ret: number }[];
  fallback: number;
}

/** The outcome of every number the arch's table names in some rule. */
function outcomes(spec: SpecSeccomp, arch: ArchInfo, fallback: number): Map<number, Outcome> {
  const out = new Map<number, Outcome>();
  const closed = new Set<number>();
  for (const rule of spec.syscalls) {
    const ret = actionValue(rule.action, rule.errnoRet);
    for (const name of new Set(rule.names)) {
      const nr = arch.syscalls[name];
      // Names unknown to this arch's table are skipped, as libseccomp does.
      if (nr === undefined || closed.has(nr)) continue;
      const o = out.get(nr) ?? { rules: [], fallback };
      out.set(nr, o);
      if (rule.args?.length) o.rules.push({ args: rule.args, ret });
      else {
        o.fallback = ret;
        closed.add(nr);
      }
    }
  }
  return out;
}

interface Range {
  start: number;
  key: string;
  outcome: Outcome;
}

/** Numbers 0..2^32-1 as ranges of one outcome each, in order. */
function ranges(byNumber: Map<number, Outcome>, fallback: number): Range[] {
  const none: Outcome = { rules: [], fallback };
  const keyOf = (o: Outcome) => JSON.stringify(o);
  const out: Range[] = [{ start: 0, key: keyOf(none), outcome: none }];
  const numbers = [...byNumber.keys()].sort((a, b) => a - b);
  let expected = 0;
  for (const nr of numbers) {
    if (nr !== expected) pushRange(out, expected, none, keyOf(none));
    const o = byNumber.get(nr) as Outcome;
    pushRange(out, nr, o, keyOf(o));
    expected = nr + 1;
  }
  pushRange(out, expected, none, keyOf(none));
  return out;
}

function pushRange(out: Range[], start: number, outcome: Outcome, key: string): void {
  const last = out[out.length - 1] as Range;
  if (last.key === key) return;
  if (last.start === start) out[out.length - 1] = { start, key, outcome };
  else out.push({ start, key, outcome });
}

/** The rules' checks, in order, given what is known of each argument's high word. */
function emitChecks(e: Emitter, o: Outcome, known: (index: number) => KnownHigh): Target {
  let next: Target = { ret: o.fallback };
  for (const rule of [...o.rules].reverse()) {
    let match: Target = { ret: rule.ret };
    for (const arg of [...rule.args].reverse())
      match = emitArg(e, arg, match, next, known(arg.index));
    next = match;
  }
  return next;
}

/**
 * Arguments whose high word is worth testing once, up front, for the whole
 * outcome (at most 3: each doubles the checks' code). personality's five
 * values then cost one high-word test and five low-word ones, not ten.
 */
function highFirst(o: Outcome): number[] {
  const conds = o.rules.flatMap((r) => r.args);
  const indexes = [...new Set(conds.map((a) => a.index))].filter((i) => {
    const on = conds.filter((a) => a.index === i);
    const needsHigh = on.some((a) => a.op !== "SCMP_CMP_MASKED_EQ");
    return needsHigh && highTestable(on);
  });
  return indexes.slice(0, 3);
}

function emitWithHighTests(
  e: Emitter,
  o: Outcome,
  pending: number[],
  known: Map<number, KnownHigh>,
): Target {
  const [index, ...rest] = pending;
  if (index === undefined) return emitChecks(e, o, (i) => known.get(i));
  const nonZero = emitWithHighTests(e, o, rest, new Map(known).set(index, "greater"));
  const zero = emitWithHighTests(e, o, rest, new Map(known).set(index, "zero"));
  return { label: emitHighIsZero(e, index, zero, nonZero) };
}

/** The checks of a conditional outcome, or its RET. */
function emitOutcome(e: Emitter, o: Outcome, bits: 32 | 64): Target {
  // A 32-bit architecture's arguments have no high word.
  if (bits === 32) return emitChecks(e, o, () => "zero");
  return emitWithHighTests(e, o, highFirst(o), new Map());
}

/** Binary search over `rs`: JGE on the middle range's start. */
function emitSearch(e: Emitter, rs: Range[], leaf: (r: Range) => Target): Target {
  if (rs.length === 1) return leaf(rs[0] as Range);
  const mid = rs.length >> 1;
  const upper = emitSearch(e, rs.slice(mid), leaf);
  const lower = emitSearch(e, rs.slice(0, mid), leaf);
  return { label: e.jump(BPF.JGE_K, (rs[mid] as Range).start, upper, lower) };
}

/** One architecture's block; returns its entry and how many of its syscalls can be allowed. */
function emitArch(e: Emitter, spec: SpecSeccomp, arch: ArchInfo, fallback: number) {
  const byNumber = outcomes(spec, arch, fallback);
  const leaves = new Map<string, Target>();
  const leaf = (r: Range): Target => {
    let t = leaves.get(r.key);
    if (t === undefined) {
      t = emitOutcome(e, r.outcome, arch.scmp === "SCMP_ARCH_X86" ? 32 : 64);
      leaves.set(r.key, t);
    }
    return t;
  };
  e.continueAt(emitSearch(e, ranges(byNumber, fallback), leaf));
  if (arch.scmp === "SCMP_ARCH_X86_64") {
    // x32 syscalls (x86_64 numbers with bit 30 set) enter the kernel through
    // their own, less-used entry points and compat paths (CVE-2014-0038 was
    // one). Nothing minibox runs uses x32: refuse them whatever the profile
    // says. EPERM rather than KILL_PROCESS: a probe gets an error instead of
    // the container's main process being killed, and the call still never
    // reaches the x32 code.
    e.jump(
      BPF.JSET_K,
      X32_SYSCALL_BIT,
      { ret: actionValue("SCMP_ACT_ERRNO", EPERM) },
      {
        label: e.next - 1,
      },
    );
  }
  const entry = e.load(OFFSET_NR);
  const allowed = [...byNumber.values()].filter(
    (o) => o.fallback === RET.ALLOW || o.rules.some((r) => r.ret === RET.ALLOW),
  ).length;
  return { entry, allowed };
}

/** Compile `spec` for a host of architecture `arch` (process.arch). */
export function compileFilter(spec: SpecSeccomp, arch: string): CompiledFilter {
  const host = HOST_ARCHES[arch];
  if (!host) throw new MiniboxError(`seccomp: no syscall table for architecture ${arch}`);
  const native = host[0] as string;
  const wanted = spec.architectures.length ? spec.architectures : [native];
  const arches = host.filter((a) => wanted.includes(a)).map((a) => ARCHES[a] as ArchInfo);
  const fallback = actionValue(spec.defaultAction, spec.defaultErrnoRet);
  const e = new Emitter();
  const entries = new Map<ArchInfo, number>();
  let allowed = 0;
  // Emitted last-first, so the native block ends up right after the dispatch.
  for (const a of [...arches].reverse()) {
    const block = emitArch(e, spec, a, fallback);
    entries.set(a, block.entry);
    if (a.scmp === native) allowed = block.allowed;
  }
  let dispatch: Target = { ret: RET.KILL_PROCESS };
  for (const a of [...arches].reverse()) {
    dispatch = { label: e.jump(BPF.JEQ_K, a.audit, { label: entries.get(a) as number }, dispatch) };
  }
  e.continueAt(dispatch);
  e.load(OFFSET_ARCH);
  const program = e.program();
  if (program.length > MAX_INSTRUCTIONS) {
    throw new MiniboxError(
      `seccomp profile too large: ${program.length} BPF instructions, the kernel takes ${MAX_INSTRUCTIONS}`,
    );
  }
  return { program: encode(program), instructions: program.length, allowed };
}
