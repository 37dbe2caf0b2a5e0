/**
 * Classic BPF for seccomp: the few instructions the compiler uses, and an
 * emitter that builds a program from its end backwards. Backwards, because
 * every jump in a seccomp program goes forward: when a jump is emitted, all
 * of its targets already exist, so its offsets are known at once and, where
 * one is past the 255 instructions a conditional jump can reach, a JA
 * (32-bit offset) trampoline is put right after it.
 */

/** struct sock_filter. */
export interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

export const BPF = {
  LD_W_ABS: 0x20, // A = seccomp_data[k], 32 bits
  JA: 0x05, // pc += k
  JEQ_K: 0x15, // pc += (A == k) ? jt : jf
  JGT_K: 0x25, // pc += (A > k) ? jt : jf (unsigned)
  JGE_K: 0x35, // pc += (A >= k) ? jt : jf (unsigned)
  JSET_K: 0x45, // pc += (A & k) ? jt : jf
  AND_K: 0x54, // A &= k
  RET_K: 0x06, // return k
} as const;

/** Where in the program: an index counted from the program's end (stable while emitting backwards). */
export type Label = number;

/** What a jump goes to: code already emitted, or "return this value" (a RET found or made nearby). */
export type Target = { label: Label } | { ret: number };

/** How far a conditional jump reaches (jt and jf are 8 bits). */
const REACH = 255;
/** A RET copy is reused only this close, leaving room for two trampolines pushed after resolving. */
const RET_REUSE = REACH - 5;

export class Emitter {
  private readonly reversed: Insn[] = [];
  /** The nearest RET of each value, to share it (identical returns are emitted once where they reach). */
  private readonly rets = new Map<number, Label>();

  /** The label the next pushed instruction gets. */
  get next(): Label {
    return this.reversed.length;
  }

  /** The jump offset from an instruction pushed now to `target`. */
  private offset(target: Label): number {
    return this.next - target - 1;
  }

  push(insn: Insn): Label {
    this.reversed.push({ ...insn, k: insn.k >>> 0 });
    return this.next - 1;
  }

  load(offset: number): Label {
    return this.push({ code: BPF.LD_W_ABS, jt: 0, jf: 0, k: offset });
  }

  private resolve(t: Target): Label {
    if ("label" in t) return t.label;
    const near = this.rets.get(t.ret);
    if (near !== undefined && this.offset(near) <= RET_REUSE) return near;
    const label = this.push({ code: BPF.RET_K, jt: 0, jf: 0, k: t.ret });
    this.rets.set(t.ret, label);
    return label;
  }

  /** A JA to `target` if it is too far for a conditional jump (margin: the other side's trampoline). */
  private reachable(target: Label): Label {
    if (this.offset(target) <= REACH - 2) return target;
    return this.push({ code: BPF.JA, jt: 0, jf: 0, k: this.offset(target) });
  }

  /** A conditional jump: to `t` if the test holds, else to `f`. */
  jump(code: number, k: number, t: Target, f: Target): Label {
    const lt = this.reachable(this.resolve(t));
    const lf = this.reachable(this.resolve(f));
    return this.push({ code, k, jt: this.offset(lt), jf: this.offset(lf) });
  }

  /** Make `t` what runs after the next instruction pushed: a RET, a JA, or nothing if already there. */
  continueAt(t: Target): Label {
    if ("ret" in t) return this.push({ code: BPF.RET_K, jt: 0, jf: 0, k: t.ret });
    if (t.label === this.next - 1) return t.label;
    return this.push({ code: BPF.JA, jt: 0, jf: 0, k: this.offset(t.label) });
  }

  /** The program, first instruction first. */
  program(): Insn[] {
    return [...this.reversed].reverse();
  }
}

/** struct sock_filter[] as the kernel reads it: u16 code, u8 jt, u8 jf, u32 k, little-endian. */
export function encode(program: readonly Insn[]): Uint8Array {
  const bytes = new Uint8Array(program.length * 8);
  const view = new DataView(bytes.buffer);
  program.forEach((insn, i) => {
    view.setUint16(i * 8, insn.code, true);
    view.setUint8(i * 8 + 2, insn.jt);
    view.setUint8(i * 8 + 3, insn.jf);
    view.setUint32(i * 8 + 4, insn.k >>> 0, true);
  });
  return bytes;
}

/** The inverse of encode (for tests and --trace). */
export function decode(bytes: Uint8Array): Insn[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.length / 8 }, (_, i) => ({
    code: view.getUint16(i * 8, true),
    jt: view.getUint8(i * 8 + 2),
    jf: view.getUint8(i * 8 + 3),
    k: view.getUint32(i * 8 + 4, true),
  }));
}
