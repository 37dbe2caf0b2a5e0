// A Dockerfile parser and Docker's variable expansion, written after the
// behaviour of BuildKit's frontend/dockerfile (parser, instructions, shell/lex)
// but kept pure: no I/O, no builder state.
//
// Word normalisation: ENV/LABEL keys and values and ARG defaults are split by
// the parser (quotes group words), so the parser removes their quotes. To keep
// `expand(value, vars)` equal to what Docker computes from the original word,
// characters that were literal because of quoting or escaping and that
// expand() would otherwise treat specially (`$`, `\`, `'`, `"`) are re-escaped
// with `\`: `ENV A='$B' C="x y"` gives pairs [["A", "\\$B"], ["C", "x y"]].
// All other expandable arguments (FROM, COPY, WORKDIR, ...) keep their quotes;
// expand() removes them like Docker's shell lexer. With `# escape=\``, the
// parser rewrites those arguments to `\` escapes, so expand() never needs to
// know the file's escape token.

import { MiniboxError } from "../errors.js";

export type Instruction =
  | { kind: "FROM"; line: number; image: string; stage?: string; platform?: string; raw: string }
  | { kind: "RUN"; line: number; shell: boolean; command: string[]; raw: string }
  | { kind: "CMD" | "ENTRYPOINT"; line: number; shell: boolean; command: string[]; raw: string }
  | {
      kind: "COPY" | "ADD";
      line: number;
      sources: string[];
      dest: string;
      from?: string;
      chown?: string;
      chmod?: string;
      raw: string;
    }
  | { kind: "ENV" | "LABEL"; line: number; pairs: [string, string][]; raw: string }
  | { kind: "ARG"; line: number; name: string; defaultValue?: string; raw: string }
  | { kind: "WORKDIR" | "USER" | "STOPSIGNAL"; line: number; value: string; raw: string }
  | { kind: "EXPOSE" | "VOLUME"; line: number; values: string[]; raw: string }
  | { kind: "SHELL"; line: number; command: string[]; raw: string }
  | {
      kind: "HEALTHCHECK";
      line: number;
      none: boolean;
      command?: string[];
      shell?: boolean;
      options: Record<string, string>;
      raw: string;
    };

const KNOWN = new Set([
  "FROM",
  "RUN",
  "CMD",
  "ENTRYPOINT",
  "COPY",
  "ADD",
  "ENV",
  "LABEL",
  "ARG",
  "WORKDIR",
  "USER",
  "STOPSIGNAL",
  "EXPOSE",
  "VOLUME",
  "SHELL",
  "HEALTHCHECK",
]);

/** Flags each instruction accepts (BuildKit accepts more; those change semantics we lack). */
const FLAGS: Record<string, string[]> = {
  FROM: ["platform"],
  COPY: ["from", "chown", "chmod", "link"],
  ADD: ["chown", "chmod", "link"],
  HEALTHCHECK: ["interval", "timeout", "start-period", "start-interval", "retries"],
};

const DIRECTIVE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const WS = /[ \t\r\n\v\f]/;

function isComment(line: string): boolean {
  return /^[ \t]*#/.test(line);
}

export function parseDockerfile(text: string, file = "Dockerfile"): Instruction[] {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  let esc = "\\";
  let i = 0;

  // Parser directives: only at the very top, until the first other line.
  const seen = new Set<string>();
  for (; i < lines.length; i++) {
    const m = DIRECTIVE.exec(lines[i]);
    if (!m) break;
    const key = m[1].toLowerCase();
    if (key !== "escape" && key !== "syntax" && key !== "check") break;
    if (seen.has(key)) {
      throw new MiniboxError(`${file}:${i + 1}: only one ${key} parser directive can be used`);
    }
    seen.add(key);
    if (key === "escape") {
      if (m[2] !== "\\" && m[2] !== "`") {
        throw new MiniboxError(
          `${file}:${i + 1}: invalid escape token '${m[2]}' does not match \` or \\`,
        );
      }
      esc = m[2];
    }
  }
  // Directive lines are comments: skip them the same way below.
  const continuation = new RegExp(`${escapeRe(esc)}[ \\t]*$`);
  const out: Instruction[] = [];
  let sawFrom = false;

  for (; i < lines.length; i++) {
    if (isComment(lines[i])) continue;
    const startLine = i + 1;
    let line = lines[i].replace(/^[ \t]+/, "");
    let ended = !continuation.test(line);
    if (!ended) line = line.replace(continuation, "");
    if (ended && line.trim() === "") continue;
    while (!ended && i + 1 < lines.length) {
      i++;
      const next = lines[i];
      if (isComment(next)) continue;
      if (next.trim() === "") continue; // empty continuation line (Docker warns)
      if (continuation.test(next)) {
        line += next.replace(continuation, "");
      } else {
        line += next;
        ended = true;
      }
    }
    const raw = line.trim();
    if (raw === "") continue; // only continuations and comments
    const parsed = parseInstruction(raw, startLine, esc, (msg) => {
      throw new MiniboxError(`${file}:${startLine}: ${msg}`);
    });
    for (const ins of parsed) {
      if (ins.kind === "FROM") sawFrom = true;
      else if (!sawFrom && ins.kind !== "ARG") {
        throw new MiniboxError(`${file}:${startLine}: no FROM before ${ins.kind}`);
      }
      out.push(ins);
    }
  }
  if (out.length === 0) throw new MiniboxError(`${file}: file with no instructions`);
  return out;
}

function escapeRe(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&");
}

function parseInstruction(
  raw: string,
  line: number,
  esc: string,
  fail: (msg: string) => never,
): Instruction[] {
  const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(raw);
  const word = m?.[1] ?? raw;
  const kind = word.toUpperCase();
  let rest = (m?.[2] ?? "").trim();
  if (kind === "MAINTAINER" || kind === "ONBUILD") fail(`${kind} is not supported`);
  if (!KNOWN.has(kind)) fail(`unknown instruction: ${word}`);

  // Leading --flag[=value] words (BuildKit extracts them for every instruction).
  const flags: Record<string, string> = {};
  if (kind in FLAGS || rest.startsWith("--")) {
    const allowed = FLAGS[kind] ?? [];
    for (;;) {
      const fm = /^--([^\s=]*)(?:=(\S*))?(?:\s+|$)/.exec(rest);
      if (!fm) break;
      rest = rest.slice(fm[0].length);
      if (fm[1] === "") break; // "--" ends the flags
      if (!allowed.includes(fm[1])) fail(`unknown flag: --${fm[1]} for ${kind}`);
      if (fm[1] in flags) fail(`duplicate flag specified: --${fm[1]}`);
      flags[fm[1]] = fm[2] ?? "true";
    }
  }
  const conv = (s: string) => (esc === "\\" ? s : toBackslashEscapes(s, esc));

  switch (kind) {
    case "FROM": {
      const words = rest.split(/\s+/).filter(Boolean);
      if (words.length !== 1 && !(words.length === 3 && words[1].toUpperCase() === "AS")) {
        fail("FROM requires either one or three arguments");
      }
      const ins: Instruction = { kind: "FROM", line, image: conv(words[0]), raw };
      if (words.length === 3) {
        if (!/^[a-zA-Z][a-zA-Z0-9_.-]*$/.test(words[2])) {
          fail(
            `invalid name for build stage: "${words[2]}", name can't start with a number or contain symbols`,
          );
        }
        ins.stage = words[2].toLowerCase();
      }
      if (flags.platform !== undefined) ins.platform = conv(flags.platform);
      return [ins];
    }
    case "RUN":
    case "CMD":
    case "ENTRYPOINT": {
      const json = maybeJson(rest, kind, fail);
      if (json) return [{ kind, line, shell: false, command: json, raw }];
      if (rest === "") fail(`${kind} requires at least one argument`);
      return [{ kind, line, shell: true, command: [rest], raw }];
    }
    case "SHELL": {
      const json = maybeJson(rest, kind, fail);
      if (!json) fail("SHELL requires the arguments to be in JSON form");
      if (json.length === 0) fail("SHELL requires at least one argument");
      return [{ kind, line, command: json, raw }];
    }
    case "COPY":
    case "ADD": {
      const json = maybeJson(rest, kind, fail);
      const words = json ?? rest.split(/\s+/).filter(Boolean).map(conv);
      if (words.length < 2) fail(`${kind} requires at least two arguments`);
      const ins: Instruction = {
        kind,
        line,
        sources: words.slice(0, -1),
        dest: words[words.length - 1],
        raw,
      };
      if (flags.from !== undefined) {
        if (flags.from === "" || flags.from === "true") fail("--from requires a value");
        ins.from = conv(flags.from);
      }
      if (flags.chown !== undefined) ins.chown = conv(flags.chown);
      if (flags.chmod !== undefined) ins.chmod = conv(flags.chmod);
      return [ins];
    }
    case "ENV":
    case "LABEL": {
      const words = parseWords(rest, esc);
      if (words.length === 0) {
        fail(
          kind === "ENV" ? "ENV must have two arguments" : "LABEL requires at least one argument",
        );
      }
      const pairs: [string, string][] = [];
      if (!words[0].includes("=")) {
        // Legacy form: KEY value with spaces.
        const lm = /^(\S+)\s+([\s\S]+)$/.exec(rest);
        if (!lm) fail(`${kind} must have two arguments`);
        pairs.push([normalizeWord(lm[1], esc), normalizeWord(lm[2], esc)]);
      } else {
        for (const w of words) {
          const eq = w.indexOf("=");
          if (eq < 0) {
            fail(`Syntax error - can't find = in "${w}". Must be of the form: name=value`);
          }
          const key = normalizeWord(w.slice(0, eq), esc);
          if (key === "") fail(`${kind} names can not be blank`);
          pairs.push([key, normalizeWord(w.slice(eq + 1), esc)]);
        }
      }
      return [{ kind, line, pairs, raw }];
    }
    case "ARG": {
      const words = parseWords(rest, esc);
      if (words.length === 0) fail("ARG requires exactly one argument");
      return words.map((w) => {
        const eq = w.indexOf("=");
        const name = normalizeWord(eq < 0 ? w : w.slice(0, eq), esc);
        if (name === "") fail("ARG names can not be blank");
        const ins: Instruction = { kind: "ARG", line, name, raw };
        if (eq >= 0) ins.defaultValue = normalizeWord(w.slice(eq + 1), esc);
        return ins;
      });
    }
    case "WORKDIR":
    case "USER":
    case "STOPSIGNAL": {
      if (rest === "") fail(`${kind} requires exactly one argument`);
      return [{ kind, line, value: conv(rest), raw }];
    }
    case "EXPOSE":
    case "VOLUME": {
      const json = kind === "VOLUME" ? maybeJson(rest, kind, fail) : undefined;
      const values = json ?? rest.split(/\s+/).filter(Boolean).map(conv);
      if (values.length === 0) fail(`${kind} requires at least one argument`);
      if (kind === "VOLUME" && values.some((v) => v.trim() === "")) {
        fail("VOLUME specified can not be an empty string");
      }
      return [{ kind, line, values, raw }];
    }
    case "HEALTHCHECK": {
      const hm = /^(\S+)(?:\s+([\s\S]*))?$/.exec(rest);
      const sub = hm?.[1].toUpperCase();
      const options = { ...flags };
      if (sub === "NONE") {
        if (hm?.[2] || Object.keys(options).length > 0) {
          fail("HEALTHCHECK NONE takes no arguments");
        }
        return [{ kind, line, none: true, options, raw }];
      }
      if (sub !== "CMD") fail(`Unknown type "${hm?.[1] ?? ""}" in HEALTHCHECK (try CMD)`);
      const cmd = (hm?.[2] ?? "").trim();
      const json = maybeJson(cmd, kind, fail);
      if (json) return [{ kind, line, none: false, shell: false, command: json, options, raw }];
      if (cmd === "") fail("Missing command after HEALTHCHECK CMD");
      return [{ kind, line, none: false, shell: true, command: [cmd], options, raw }];
    }
  }
  return fail(`unknown instruction: ${word}`);
}

/**
 * Docker's exec-form detection: a JSON array of strings. Anything else is the
 * shell form, except text that clearly starts a JSON array (`["`) and is not
 * valid JSON, which Docker would silently run through the shell.
 */
function maybeJson(rest: string, kind: string, fail: (msg: string) => never): string[] | undefined {
  if (!rest.startsWith("[")) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(rest);
  } catch {
    if (/^\[\s*"/.test(rest)) {
      fail(`${kind}: invalid or unterminated JSON array: ${rest}`);
    }
    return undefined;
  }
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) return undefined;
  return value as string[];
}

/** BuildKit's parseWords: split on whitespace, quotes group, quotes and escapes kept. */
function parseWords(rest: string, esc: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote = "";
  let blankOk = false;
  for (let pos = 0; pos < rest.length; pos++) {
    const ch = rest[pos];
    if (quote) {
      if (ch === quote) quote = "";
      else if (ch === esc && quote !== "'") {
        if (pos + 1 === rest.length) continue;
        word += ch;
        pos++;
        word += rest[pos];
        continue;
      }
      word += ch;
      continue;
    }
    if (WS.test(ch)) {
      if (inWord && (blankOk || word !== "")) words.push(word);
      inWord = false;
      word = "";
      blankOk = false;
      continue;
    }
    inWord = true;
    if (ch === "'" || ch === '"') {
      quote = ch;
      blankOk = true;
    } else if (ch === esc) {
      if (pos + 1 === rest.length) continue;
      word += ch;
      pos++;
      word += rest[pos];
      continue;
    }
    word += ch;
  }
  if (inWord && (blankOk || word !== "")) words.push(word);
  return words;
}

// ---------------------------------------------------------------------------
// Shell-like word processing (BuildKit's shell.Lex.ProcessWord).

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
function normalizeWord(word: string, esc: string): string {
  try {
    return new Lexer(word, esc, undefined).word();
  } catch {
    return word; // leave malformed words to expand(), which reports them
  }
}

/** Rewrite a word written with a backtick escape to `\` escapes. */
function toBackslashEscapes(word: string, esc: string): string {
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
