/**
 * Docker's shell-like word processing (BuildKit's shell.Lex.ProcessWord):
 * variable expansion with quote removal for build steps, and the
 * normalisation the Dockerfile parser applies to ENV/LABEL/ARG words (see
 * dockerfile.ts for why those are re-escaped).
 */
import { MiniboxError } from "../errors.js";

class Lexer {
  pos = 0;
  constructor(
    readonly s: string,
    readonly esc: string,
    /** Expansion mode: resolve variables. Normalise mode (undefined): re-emit `$...` text. */
    readonly vars: Record<string, string | undefined> | undefined,
  ) {}

  peek(): string {
    return this.s[this.pos] ?? "";
  }

  /** Literal character, escaped when normalising so expand() later sees it as literal. */
  lit(ch: string): string {
    if (this.vars === undefined && "\\$'\"".includes(ch)) return `\\${ch}`;
    return ch;
  }

  word(stopOn = ""): string {
    let out = "";
    while (this.pos < this.s.length) {
      const ch = this.s[this.pos];
      if (stopOn && ch === stopOn) return out;
      this.pos++;
      if (ch === this.esc) {
        if (this.pos >= this.s.length) break;
        out += this.lit(this.s[this.pos++]);
      } else if (ch === "'") {
        out += this.singleQuoted();
      } else if (ch === '"') {
        out += this.doubleQuoted();
      } else if (ch === "$") {
        out += this.dollar();
      } else {
        out += this.lit(ch);
      }
    }
    if (stopOn) throw new Error(`missing '${stopOn}'`);
    return out;
  }

  singleQuoted(): string {
    let out = "";
    while (this.pos < this.s.length) {
      const ch = this.s[this.pos++];
      if (ch === "'") return out;
      out += this.lit(ch);
    }
    throw new Error("unexpected end of statement while looking for matching single-quote");
  }

  doubleQuoted(): string {
    let out = "";
    while (this.pos < this.s.length) {
      const ch = this.s[this.pos++];
      if (ch === '"') return out;
      if (ch === "$") {
        out += this.dollar();
      } else if (ch === this.esc) {
        const next = this.peek();
        if (next === '"' || next === "$" || next === this.esc) {
          this.pos++;
          out += this.lit(next);
        } else {
          out += this.lit(ch);
        }
      } else {
        out += this.lit(ch);
      }
    }
    throw new Error("unexpected end of statement while looking for matching double-quote");
  }

  name(): string {
    const m = /^[A-Za-z0-9_]+/.exec(this.s.slice(this.pos));
    if (!m) return "";
    this.pos += m[0].length;
    return m[0];
  }

  dollar(): string {
    const start = this.pos - 1;
    if (this.peek() !== "{") {
      const name = this.name();
      if (name === "") return this.lit("$");
      if (this.vars === undefined) return `$${name}`;
      return this.vars[name] ?? "";
    }
    this.pos++;
    const name = this.name();
    if (name === "") throw new Error("bad substitution");
    const vars = this.vars;
    const value = vars?.[name];
    let ch = this.peek();
    if (ch === "}") {
      this.pos++;
      return vars === undefined ? this.s.slice(start, this.pos) : (value ?? "");
    }
    let colon = false;
    if (ch === ":") {
      colon = true;
      this.pos++;
      ch = this.peek();
    }
    if (ch !== "-" && ch !== "+" && ch !== "?") {
      throw new Error(`unsupported modifier (${colon ? ":" : ""}${ch}) in substitution`);
    }
    this.pos++;
    if (vars === undefined) {
      // Normalising: keep the whole ${...} as written (nested braces not supported).
      const end = this.s.indexOf("}", this.pos);
      if (end < 0) throw new Error("missing '}'");
      this.pos = end + 1;
      return this.s.slice(start, this.pos);
    }
    const word = this.word("}");
    this.pos++; // the "}"
    const set = value !== undefined && (!colon || value !== "");
    if (ch === "-") return set ? (value as string) : word;
    if (ch === "+") return set ? word : "";
    if (!set) throw new Error(`${name}: ${word || "is not allowed to be unset"}`);
    return value as string;
  }
}

/**
 * Docker's variable substitution ($VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:+a},
 * ${VAR+a}, ${VAR:?msg}) with its quote removal ('...' literal, "..." expands)
 * and `\` escapes. Unset variables expand to "". Throws MiniboxError on a
 * malformed word.
 */
export function expand(text: string, vars: Record<string, string | undefined>): string {
  try {
    return new Lexer(text, "\\", vars).word();
  } catch (e) {
    throw new MiniboxError(`failed to process "${text}": ${(e as Error).message}`);
  }
}

/** Remove quotes and escapes of a parsed word, re-escaping specials with `\` (see top). */
export function normalizeWord(word: string, esc: string): string {
  try {
    return new Lexer(word, esc, undefined).word();
  } catch {
    return word; // leave malformed words to expand(), which reports them
  }
}

/** Rewrite a word written with a backtick escape to `\` escapes. */
export function toBackslashEscapes(word: string, esc: string): string {
  let out = "";
  let single = false;
  for (let i = 0; i < word.length; i++) {
    const ch = word[i];
    if (single) {
      if (ch === "'") single = false;
      out += ch;
    } else if (ch === "'") {
      single = true;
      out += ch;
    } else if (ch === esc && i + 1 < word.length) {
      out += `\\${word[++i]}`;
    } else if (ch === "\\") {
      out += "\\\\";
    } else {
      out += ch;
    }
  }
  return out;
}
