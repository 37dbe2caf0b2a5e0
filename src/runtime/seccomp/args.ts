/**
 * One argument condition in classic BPF. seccomp_data.args[i] is a 64-bit
 * value at offset 16 + 8·i, read as two 32-bit words (little-endian: low word
 * first); a 64-bit comparison is a comparison of the high words, then of the
 * low words when the high words are equal. On a 32-bit architecture the
 * argument is 32 bits: only the low word is compared, the high one counts as
 * 0 (libseccomp does the same).
 */
import { BPF, type Emitter, type Label, type Target } from "./bpf.js";
import type { SeccompArg, SeccompOp } from "./profile.js";

const TWO32 = 2 ** 32;

function words(v: number): { hi: number; lo: number } {
  return { hi: Math.floor(v / TWO32) >>> 0, lo: (v % TWO32) >>> 0 };
}

/**
 * A comparison of the low words as one BPF jump: classic BPF has only
 * "equal", "greater" and "greater or equal", so NE, LT and LE are EQ, GE and
 * GT with the match and fail targets swapped.
 */
const LOW_JUMPS: Record<
  Exclude<SeccompOp, "SCMP_CMP_MASKED_EQ">,
  { code: number; swap: boolean }
> = {
  SCMP_CMP_EQ: { code: BPF.JEQ_K, swap: false },
  SCMP_CMP_NE: { code: BPF.JEQ_K, swap: true },
  SCMP_CMP_GT: { code: BPF.JGT_K, swap: false },
  SCMP_CMP_GE: { code: BPF.JGE_K, swap: false },
  SCMP_CMP_LT: { code: BPF.JGE_K, swap: true },
  SCMP_CMP_LE: { code: BPF.JGT_K, swap: true },
};

/** The low-word test, given that the high words were equal (or the arg's high word is 0 against a high word of 0). */
function low(e: Emitter, a: SeccompArg, m: Target, f: Target): Label {
  const { lo } = words(a.value);
  if (a.op === "SCMP_CMP_MASKED_EQ") {
    e.jump(BPF.JEQ_K, words(a.valueTwo ?? 0).lo, m, f);
    if (lo !== 0xffffffff) e.push({ code: BPF.AND_K, jt: 0, jf: 0, k: lo });
  } else {
    const { code, swap } = LOW_JUMPS[a.op];
    e.jump(code, lo, swap ? f : m, swap ? m : f);
  }
  return e.load(16 + 8 * a.index);
}

/** Where the high words send the check when they are equal, and when they are not. */
function highOutcome(
  a: SeccompArg,
  argHi: "zero" | "greater" | "less" | "unknown",
): "low" | "match" | "fail" | "unknown" {
  if (argHi === "unknown") return "unknown";
  const equal = argHi === "zero";
  switch (a.op) {
    case "SCMP_CMP_EQ":
    case "SCMP_CMP_MASKED_EQ":
      return equal ? "low" : "fail";
    case "SCMP_CMP_NE":
      return equal ? "low" : "match";
    case "SCMP_CMP_GT":
    case "SCMP_CMP_GE":
      return equal ? "low" : argHi === "greater" ? "match" : "fail";
    default: // LT, LE
      return equal ? "low" : argHi === "greater" ? "fail" : "match";
  }
}

/** The high-word test on a 64-bit architecture, in front of the low-word one at `lowLabel`. */
function high(e: Emitter, a: SeccompArg, lowLabel: Label, m: Target, f: Target): Label {
  const pick = (o: "low" | "match" | "fail" | "unknown"): Target =>
    o === "low" ? { label: lowLabel } : o === "match" ? m : f;
  const offset = 16 + 8 * a.index + 4;
  if (a.op === "SCMP_CMP_MASKED_EQ") {
    const mask = words(a.value).hi;
    const want = words(a.valueTwo ?? 0).hi;
    if (mask === 0) return want === 0 ? lowLabel : -1;
    e.jump(BPF.JEQ_K, want, { label: lowLabel }, f);
    if (mask !== 0xffffffff) e.push({ code: BPF.AND_K, jt: 0, jf: 0, k: mask });
    return e.load(offset);
  }
  const { hi } = words(a.value);
  const equalOrNot = e.jump(BPF.JEQ_K, hi, { label: lowLabel }, pick(highOutcome(a, "less")));
  if (a.op !== "SCMP_CMP_EQ" && a.op !== "SCMP_CMP_NE") {
    // The "less" side above is only reached when not greater: test greater first.
    e.jump(BPF.JGT_K, hi, pick(highOutcome(a, "greater")), { label: equalOrNot });
  }
  return e.load(offset);
}

/**
 * What is already known of the argument's high word: "zero" (a 32-bit
 * architecture, or tested before), "greater" (tested non-zero, against a
 * value whose high word is 0), or nothing.
 */
export type KnownHigh = "zero" | "greater" | undefined;

/** Emit `args[a.index] a.op a.value`: to `m` if it holds, else to `f`. Returns its entry. */
export function emitArg(e: Emitter, a: SeccompArg, m: Target, f: Target, known: KnownHigh): Target {
  if (known !== undefined) {
    // Decide statically what the high-word test would.
    const valueHi = words(a.value).hi;
    const outcome =
      a.op === "SCMP_CMP_MASKED_EQ"
        ? highMasked(a, known)
        : highOutcome(a, valueHi === 0 ? known : known === "zero" ? "less" : "unknown");
    if (outcome === "match") return m;
    if (outcome === "fail") return f;
    if (outcome === "low") return { label: low(e, a, m, f) };
  }
  const lowLabel = low(e, a, m, f);
  const entry = high(e, a, lowLabel, m, f);
  return entry === -1 ? f : { label: entry };
}

/** MASKED_EQ's high-word test when the argument's high word is known. */
function highMasked(a: SeccompArg, known: "zero" | "greater"): "low" | "fail" | "unknown" {
  const mask = words(a.value).hi;
  const want = words(a.valueTwo ?? 0).hi;
  if (mask === 0) return want === 0 ? "low" : "fail";
  if (known === "zero") return want === 0 ? "low" : "fail";
  return "unknown";
}

/**
 * Can the high word of argument `index` be tested once for the whole outcome?
 * Yes when every condition on it compares with a value whose high word is 0:
 * then "high word is 0" means only the low words matter, and "not 0" decides
 * every condition on that argument without looking further.
 */
export function highTestable(conds: readonly SeccompArg[]): boolean {
  return conds.every((a) =>
    a.op === "SCMP_CMP_MASKED_EQ"
      ? words(a.value).hi === 0 && words(a.valueTwo ?? 0).hi === 0
      : words(a.value).hi === 0,
  );
}

/** The jump testing argument `index`'s high word against 0. */
export function emitHighIsZero(e: Emitter, index: number, zero: Target, nonZero: Target): Label {
  e.jump(BPF.JEQ_K, 0, zero, nonZero);
  return e.load(16 + 8 * index + 4);
}
