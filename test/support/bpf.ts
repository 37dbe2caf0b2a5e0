/**
 * A classic-BPF interpreter for seccomp programs, for the tests: it runs a
 * program on one seccomp_data and counts what it executed. It knows only the
 * instructions minibox's compiler emits and refuses everything else, and it
 * checks what the kernel checks before loading a filter (length, jumps in
 * range, loads inside seccomp_data, a RET at the end): a program the kernel
 * would reject fails the test instead of passing here.
 */
import type { Insn } from "../../src/runtime/seccomp/bpf.js";

export interface SeccompData {
  nr: number;
  arch: number;
  /** Up to six 64-bit arguments (missing ones are 0). */
  args?: readonly bigint[];
  ip?: bigint;
}

export interface Run {
  ret: number;
  /** Instructions executed. */
  steps: number;
  /** Conditional jumps executed. */
  comparisons: number;
}

const LD_W_ABS = 0x20;
const JA = 0x05;
const JMP_K: Record<number, (a: number, k: number) => boolean> = {
  21: (a, k) => a === k,
  37: (a, k) => a > k,
  53: (a, k) => a >= k,
  69: (a, k) => (a & k) >>> 0 !== 0,
};
const AND_K = 0x54;
const RET_K = 0x06;
const SECCOMP_DATA_SIZE = 64;

/** The kernel's checks (bpf_check_classic, seccomp_check_filter) for what this interpreter knows. */
export function checkProgram(program: readonly Insn[]): void {
  if (program.length === 0 || program.length > 4096) {
    throw new Error(`program length ${program.length}: the kernel takes 1..4096`);
  }
  program.forEach((insn, pc) => {
    const where = `instruction ${pc} (code 0x${insn.code.toString(16)})`;
    const end = program.length;
    if (insn.code === LD_W_ABS) {
      if (insn.k % 4 !== 0 || insn.k > SECCOMP_DATA_SIZE - 4)
        throw new Error(`${where}: load outside seccomp_data`);
    } else if (insn.code === JA) {
      if (pc + 1 + insn.k >= end) throw new Error(`${where}: JA out of range`);
    } else if (insn.code in JMP_K) {
      if (insn.jt > 255 || insn.jf > 255) throw new Error(`${where}: offset over 8 bits`);
      if (pc + 1 + Math.max(insn.jt, insn.jf) >= end)
        throw new Error(`${where}: jump out of range`);
    } else if (insn.code !== AND_K && insn.code !== RET_K) {
      throw new Error(`${where}: unknown instruction`);
    }
  });
  if ((program[program.length - 1] as Insn).code !== RET_K)
    throw new Error("program does not end with RET");
}

function word(data: SeccompData, offset: number): number {
  if (offset === 0) return data.nr >>> 0;
  if (offset === 4) return data.arch >>> 0;
  const field = offset < 16 ? (data.ip ?? 0n) : (data.args?.[(offset - 16) >> 3] ?? 0n);
  const high = offset % 8 === 4;
  return Number((high ? field >> 32n : field) & 0xffffffffn);
}

const checked = new WeakSet<readonly Insn[]>();

/** Run `program` (checked first) on `data`. */
export function runFilter(program: readonly Insn[], data: SeccompData): Run {
  if (!checked.has(program)) {
    checkProgram(program);
    checked.add(program);
  }
  let a = 0;
  let pc = 0;
  let steps = 0;
  let comparisons = 0;
  for (;;) {
    const insn = program[pc] as Insn;
    steps++;
    pc++;
    if (insn.code === RET_K) return { ret: insn.k >>> 0, steps, comparisons };
    if (insn.code === LD_W_ABS) a = word(data, insn.k);
    else if (insn.code === AND_K) a = (a & insn.k) >>> 0;
    else if (insn.code === JA) pc += insn.k;
    else {
      comparisons++;
      pc += (JMP_K[insn.code] as (a: number, k: number) => boolean)(a, insn.k >>> 0)
        ? insn.jt
        : insn.jf;
    }
  }
}
