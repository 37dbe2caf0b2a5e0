/**
 * One Dockerfile instruction, from its text (continuations joined, comments
 * removed) to its typed form: a table from instruction name to parser. Each
 * parser gets the words after the instruction and its leading --flags and
 * fails with BuildKit's message for malformed input.
 */
import { normalizeWord, toBackslashEscapes } from "./shell-words.js";

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

/** Flags each instruction accepts (BuildKit accepts more; those change semantics we lack). */
const FLAGS: Record<string, string[]> = {
  FROM: ["platform"],
  COPY: ["from", "chown", "chmod", "link"],
  ADD: ["chown", "chmod", "link"],
  HEALTHCHECK: ["interval", "timeout", "start-period", "start-interval", "retries"],
};

const WS = /[ \t\r\n\v\f]/;

/** What every instruction parser gets. */
interface Input {
  line: number;
  raw: string;
  /** The text after the instruction name and its flags. */
  rest: string;
  flags: Record<string, string>;
  /** The file's escape token (`\` or a backtick). */
  esc: string;
  fail: (msg: string) => never;
}

type Parser = (input: Input) => Instruction[];

const PARSERS = new Map<string, Parser>([
  ["FROM", parseFrom],
  ["RUN", (input) => parseCommand("RUN", input)],
  ["CMD", (input) => parseCommand("CMD", input)],
  ["ENTRYPOINT", (input) => parseCommand("ENTRYPOINT", input)],
  ["SHELL", parseShell],
  ["COPY", (input) => parseCopy("COPY", input)],
  ["ADD", (input) => parseCopy("ADD", input)],
  ["ENV", (input) => parsePairs("ENV", input)],
  ["LABEL", (input) => parsePairs("LABEL", input)],
  ["ARG", parseArg],
  ["WORKDIR", (input) => parseValue("WORKDIR", input)],
  ["USER", (input) => parseValue("USER", input)],
  ["STOPSIGNAL", (input) => parseValue("STOPSIGNAL", input)],
  ["EXPOSE", (input) => parseValues("EXPOSE", input)],
  ["VOLUME", (input) => parseValues("VOLUME", input)],
  ["HEALTHCHECK", parseHealthcheck],
]);

/** One instruction (ARG may declare several, hence the array). */
export function parseInstruction(
  raw: string,
  line: number,
  esc: string,
  fail: (msg: string) => never,
): Instruction[] {
  const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(raw);
  const word = m?.[1] ?? raw;
  const kind = word.toUpperCase();
  if (kind === "MAINTAINER" || kind === "ONBUILD") fail(`${kind} is not supported`);
  const parser = PARSERS.get(kind);
  if (!parser) return fail(`unknown instruction: ${word}`);
  const { flags, rest } = takeFlags(kind, (m?.[2] ?? "").trim(), fail);
  return parser({ line, raw, rest, flags, esc, fail });
}

/** Leading --flag[=value] words (BuildKit extracts them for every instruction). */
function takeFlags(
  kind: string,
  text: string,
  fail: (msg: string) => never,
): { flags: Record<string, string>; rest: string } {
  const flags: Record<string, string> = {};
  let rest = text;
  if (!(kind in FLAGS) && !rest.startsWith("--")) return { flags, rest };
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
  return { flags, rest };
}

/**
 * Arguments other than ENV/LABEL/ARG words keep their quotes for expand();
 * with a backtick escape they are rewritten to `\` escapes (see dockerfile.ts).
 */
function conv(input: Input, s: string): string {
  return input.esc === "\\" ? s : toBackslashEscapes(s, input.esc);
}

function splitWords(input: Input): string[] {
  return input.rest
    .split(/\s+/)
    .filter(Boolean)
    .map((w) => conv(input, w));
}

function parseFrom(input: Input): Instruction[] {
  const { line, raw, flags, fail } = input;
  const words = input.rest.split(/\s+/).filter(Boolean);
  if (words.length !== 1 && !(words.length === 3 && words[1].toUpperCase() === "AS")) {
    fail("FROM requires either one or three arguments");
  }
  const ins: Instruction = { kind: "FROM", line, image: conv(input, words[0]), raw };
  if (words.length === 3) {
    if (!/^[a-zA-Z][a-zA-Z0-9_.-]*$/.test(words[2])) {
      fail(
        `invalid name for build stage: "${words[2]}", name can't start with a number or contain symbols`,
      );
    }
    ins.stage = words[2].toLowerCase();
  }
  if (flags.platform !== undefined) ins.platform = conv(input, flags.platform);
  return [ins];
}

function parseCommand(kind: "RUN" | "CMD" | "ENTRYPOINT", input: Input): Instruction[] {
  const { line, raw, rest, fail } = input;
  const json = maybeJson(rest, kind, fail);
  if (json) return [{ kind, line, shell: false, command: json, raw }];
  if (rest === "") fail(`${kind} requires at least one argument`);
  return [{ kind, line, shell: true, command: [rest], raw }];
}

function parseShell(input: Input): Instruction[] {
  const { line, raw, fail } = input;
  const json = maybeJson(input.rest, "SHELL", fail);
  if (!json) return fail("SHELL requires the arguments to be in JSON form");
  if (json.length === 0) fail("SHELL requires at least one argument");
  return [{ kind: "SHELL", line, command: json, raw }];
}

function parseCopy(kind: "COPY" | "ADD", input: Input): Instruction[] {
  const { line, raw, flags, fail } = input;
  const words = maybeJson(input.rest, kind, fail) ?? splitWords(input);
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
    ins.from = conv(input, flags.from);
  }
  if (flags.chown !== undefined) ins.chown = conv(input, flags.chown);
  if (flags.chmod !== undefined) ins.chmod = conv(input, flags.chmod);
  return [ins];
}

function parsePairs(kind: "ENV" | "LABEL", input: Input): Instruction[] {
  const { line, raw, rest, esc, fail } = input;
  const words = parseWords(rest, esc);
  if (words.length === 0) {
    fail(kind === "ENV" ? "ENV must have two arguments" : "LABEL requires at least one argument");
  }
  if (!words[0].includes("=")) {
    // Legacy form: KEY value with spaces.
    const lm = /^(\S+)\s+([\s\S]+)$/.exec(rest);
    if (!lm) return fail(`${kind} must have two arguments`);
    return [{ kind, line, pairs: [[normalizeWord(lm[1], esc), normalizeWord(lm[2], esc)]], raw }];
  }
  const pairs = words.map((w): [string, string] => {
    const eq = w.indexOf("=");
    if (eq < 0) fail(`Syntax error - can't find = in "${w}". Must be of the form: name=value`);
    const key = normalizeWord(w.slice(0, eq), esc);
    if (key === "") fail(`${kind} names can not be blank`);
    return [key, normalizeWord(w.slice(eq + 1), esc)];
  });
  return [{ kind, line, pairs, raw }];
}

function parseArg(input: Input): Instruction[] {
  const { line, raw, esc, fail } = input;
  const words = parseWords(input.rest, esc);
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

function parseValue(kind: "WORKDIR" | "USER" | "STOPSIGNAL", input: Input): Instruction[] {
  if (input.rest === "") input.fail(`${kind} requires exactly one argument`);
  return [{ kind, line: input.line, value: conv(input, input.rest), raw: input.raw }];
}

function parseValues(kind: "EXPOSE" | "VOLUME", input: Input): Instruction[] {
  const { line, raw, fail } = input;
  const json = kind === "VOLUME" ? maybeJson(input.rest, kind, fail) : undefined;
  const values = json ?? splitWords(input);
  if (values.length === 0) fail(`${kind} requires at least one argument`);
  if (kind === "VOLUME" && values.some((v) => v.trim() === "")) {
    fail("VOLUME specified can not be an empty string");
  }
  return [{ kind, line, values, raw }];
}

function parseHealthcheck(input: Input): Instruction[] {
  const { line, raw, fail } = input;
  const kind = "HEALTHCHECK";
  const hm = /^(\S+)(?:\s+([\s\S]*))?$/.exec(input.rest);
  const sub = hm?.[1].toUpperCase();
  const options = { ...input.flags };
  if (sub === "NONE") {
    if (hm?.[2] || Object.keys(options).length > 0) fail("HEALTHCHECK NONE takes no arguments");
    return [{ kind, line, none: true, options, raw }];
  }
  if (sub !== "CMD") fail(`Unknown type "${hm?.[1] ?? ""}" in HEALTHCHECK (try CMD)`);
  const cmd = (hm?.[2] ?? "").trim();
  const json = maybeJson(cmd, kind, fail);
  if (json) return [{ kind, line, none: false, shell: false, command: json, options, raw }];
  if (cmd === "") fail("Missing command after HEALTHCHECK CMD");
  return [{ kind, line, none: false, shell: true, command: [cmd], options, raw }];
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
    const ch = rest[pos] as string;
    if (ch === esc && quote !== "'") {
      // An escape keeps itself and the next character; a trailing one is dropped.
      inWord = true;
      if (pos + 1 < rest.length) word += ch + rest[++pos];
      continue;
    }
    if (quote) {
      if (ch === quote) quote = "";
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
    }
    word += ch;
  }
  if (inWord && (blankOk || word !== "")) words.push(word);
  return words;
}
