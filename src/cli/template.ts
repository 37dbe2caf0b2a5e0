/**
 * The subset of Go's text/template that Docker's `--format` accepts, with
 * Docker's functions (json, join, split, title, lower, upper, pad, truncate,
 * println) and Go's builtins (index, printf, print, len, eq/ne/lt/le/gt/ge,
 * and/or/not). Actions: `{{.A.B}}`, `{{fn arg…}}`, pipes `{{.X | json}}`,
 * `{{if}}/{{else if}}/{{else}}/{{end}}`, `{{range [$k, $v :=] .X}}…{{end}}`,
 * `{{with}}`, variables `$` and `$name`, `{{- trim -}}` markers.
 * Values that are functions are methods: `{{.Label "k"}}` calls them.
 * Parsing happens once (parseTemplate) so a bad template fails before any
 * output, with Docker's one line: "template parsing error: template: :1: …".
 */
import { MiniboxError } from "../errors.js";
import { templateFunctions } from "./template-functions.js";
import { goString, isTrue } from "./template-values.js";

type Token =
  | { kind: "field"; path: string[] } // .A.B  (empty path: the dot)
  | { kind: "var"; name: string; path: string[] } // $x.A
  | { kind: "string"; value: string }
  | { kind: "number"; value: number }
  | { kind: "ident"; name: string }
  | { kind: "punct"; value: "|" | "(" | ")" | ":=" | "," };

type Operand =
  | { kind: "field"; path: string[]; text: string }
  | { kind: "var"; name: string; path: string[]; text: string }
  | { kind: "literal"; value: unknown; text: string }
  | { kind: "ident"; name: string; text: string }
  | { kind: "sub"; pipe: Pipeline; path: string[]; text: string };

interface Pipeline {
  decl: string[];
  commands: Operand[][];
}

type Node =
  | { kind: "text"; text: string }
  | { kind: "action"; pipe: Pipeline }
  | { kind: "if" | "with" | "range"; pipe: Pipeline; body: Node[]; alt: Node[] };

export interface Template {
  nodes: Node[];
}

export class TemplateParseError extends MiniboxError {
  constructor(message: string) {
    super(`template parsing error: template: :1: ${message}`);
  }
}

/** Parse once; throws TemplateParseError (Docker's wording) on bad input. */
export function parseTemplate(source: string): Template {
  const parser = new Parser(splitActions(source));
  const nodes = parser.list(new Set());
  if (parser.pending()) throw new TemplateParseError(`unexpected {{${parser.peekText()}}}`);
  return { nodes };
}

/** Render a parsed template (or a source string) against data. */
export function renderTemplate(template: string | Template, data: unknown): string {
  const parsed = typeof template === "string" ? parseTemplate(template) : template;
  const out: string[] = [];
  execute(parsed.nodes, data, new Map([["$", data]]), out);
  return out.join("");
}

// ---- lexing -------------------------------------------------------------

interface Piece {
  text?: string;
  action?: string;
}

/** Text and `{{ action }}` pieces, with `{{-`/`-}}` trimming the neighbouring spaces. */
function splitActions(source: string): Piece[] {
  const pieces: Piece[] = [];
  let rest = source;
  let trimNext = false;
  for (;;) {
    const open = rest.indexOf("{{");
    let text = open < 0 ? rest : rest.slice(0, open);
    if (trimNext) text = text.replace(/^\s+/, "");
    if (open < 0) {
      if (text) pieces.push({ text });
      return pieces;
    }
    let inner = rest.slice(open + 2);
    if (/^-\s/.test(inner)) {
      text = text.replace(/\s+$/, "");
      inner = inner.slice(1);
    }
    if (text) pieces.push({ text });
    const close = findClose(inner);
    if (close < 0) throw new TemplateParseError("unclosed action");
    let action = inner.slice(0, close);
    trimNext = /\s-$/.test(action);
    if (trimNext) action = action.slice(0, -1);
    pieces.push({ action: action.trim() });
    rest = inner.slice(close + 2);
  }
}

/** The `}}` that closes an action, skipping ones inside quoted strings. */
function findClose(inner: string): number {
  for (let i = 0; i < inner.length; i++) {
    const ch = inner[i];
    if (ch === '"' || ch === "`") {
      const end = ch === "`" ? inner.indexOf("`", i + 1) : closingQuote(inner, i);
      if (end < 0) throw new TemplateParseError("unterminated quoted string");
      i = end;
    } else if (inner.startsWith("}}", i)) return i;
  }
  return -1;
}

function closingQuote(s: string, start: number): number {
  for (let i = start + 1; i < s.length; i++) {
    if (s[i] === "\\") i++;
    else if (s[i] === '"') return i;
  }
  return -1;
}

function lex(action: string): Token[] {
  const tokens: Token[] = [];
  const re =
    /\s+|(:=)|([|(),])|("(?:[^"\\]|\\.)*")|(`[^`]*`)|(-?\d+(?:\.\d+)?)|(\$[A-Za-z0-9_]*)((?:\.[A-Za-z0-9_]+)*)|((?:\.[A-Za-z0-9_]+)+|\.)|([A-Za-z_][A-Za-z0-9_]*)|(.)/gy;
  for (let m = re.exec(action); m && m[0] !== ""; m = re.exec(action)) {
    const [, decl, punct, dq, bq, num, varName, varPath, field, ident, bad] = m;
    if (decl) tokens.push({ kind: "punct", value: ":=" });
    else if (punct) tokens.push({ kind: "punct", value: punct as "|" });
    else if (dq) tokens.push({ kind: "string", value: JSON.parse(dq.replace(/\\'/g, "'")) });
    else if (bq) tokens.push({ kind: "string", value: bq.slice(1, -1) });
    else if (num) tokens.push({ kind: "number", value: Number(num) });
    else if (varName) tokens.push({ kind: "var", name: varName, path: splitPath(varPath ?? "") });
    else if (field) tokens.push({ kind: "field", path: splitPath(field) });
    else if (ident) tokens.push({ kind: "ident", name: ident });
    else if (bad) throw new TemplateParseError(`unexpected ${JSON.stringify(bad)} in command`);
    if (re.lastIndex >= action.length) break;
  }
  return tokens;
}

function splitPath(text: string): string[] {
  return text === "." || text === "" ? [] : text.slice(1).split(".");
}

// ---- parsing ------------------------------------------------------------

class Parser {
  private i = 0;
  constructor(private readonly pieces: Piece[]) {}

  pending(): boolean {
    return this.i < this.pieces.length;
  }

  peekText(): string {
    return this.pieces[this.i]?.action ?? "";
  }

  /** Nodes until one of `stops` (else, end) — left for the caller to consume. */
  list(stops: Set<string>): Node[] {
    const nodes: Node[] = [];
    while (this.i < this.pieces.length) {
      const piece = this.pieces[this.i] as Piece;
      if (piece.text !== undefined) {
        nodes.push({ kind: "text", text: piece.text });
        this.i++;
        continue;
      }
      const action = piece.action ?? "";
      const keyword = action.match(/^(if|else|end|range|with)\b/)?.[1];
      if (keyword === "else" || keyword === "end") {
        if (stops.has(keyword)) return nodes;
        throw new TemplateParseError(`unexpected {{${keyword}}}`);
      }
      this.i++;
      if (action.startsWith("/*")) continue; // a comment
      if (keyword) nodes.push(this.block(keyword as "if", action.slice(keyword.length)));
      else nodes.push({ kind: "action", pipe: parsePipeline(action, false) });
    }
    if (stops.size) throw new TemplateParseError("unexpected EOF");
    return nodes;
  }

  private block(kind: "if" | "with" | "range", rest: string): Node {
    if (!rest.trim()) throw new TemplateParseError(`missing value for ${kind}`);
    const pipe = parsePipeline(rest, kind !== "if");
    const body = this.list(new Set(["else", "end"]));
    let alt: Node[] = [];
    const closing = this.pieces[this.i]?.action ?? "";
    this.i++;
    if (closing.startsWith("else")) {
      const chained = closing.slice(4).trim();
      if (chained.startsWith("if ")) {
        // {{else if X}} … {{end}}: one nested if that shares this block's {{end}}.
        alt = [this.block("if", chained.slice(2))];
        return { kind, pipe, body, alt };
      }
      alt = this.list(new Set(["end"]));
      this.i++;
    }
    return { kind, pipe, body, alt };
  }
}

function parsePipeline(action: string, allowDecl: boolean): Pipeline {
  const tokens = lex(action);
  const decl: string[] = [];
  const declEnd = tokens.findIndex((t) => t.kind === "punct" && t.value === ":=");
  if (declEnd >= 0) {
    const names = tokens.slice(0, declEnd).filter((t) => !(t.kind === "punct" && t.value === ","));
    if (!allowDecl && declEnd > 1) throw new TemplateParseError("too many declarations");
    for (const t of names) {
      if (t.kind !== "var" || t.path.length)
        throw new TemplateParseError("bad variable declaration");
      decl.push(t.name);
    }
  }
  const cursor = { tokens: tokens.slice(declEnd + 1), i: 0 };
  const pipe = { decl, commands: parseCommands(cursor) };
  if (cursor.i < cursor.tokens.length) throw new TemplateParseError(`unexpected ")" in operand`);
  return pipe;
}

interface Cursor {
  tokens: Token[];
  i: number;
}

function parseCommands(c: Cursor): Operand[][] {
  const commands: Operand[][] = [[]];
  while (c.i < c.tokens.length) {
    const t = c.tokens[c.i] as Token;
    if (t.kind === "punct" && t.value === ")") break;
    c.i++;
    if (t.kind === "punct" && t.value === "|") {
      if (!commands[commands.length - 1]?.length) throw new TemplateParseError("missing command");
      commands.push([]);
      continue;
    }
    (commands[commands.length - 1] as Operand[]).push(operand(t, c));
  }
  if (!commands[commands.length - 1]?.length)
    throw new TemplateParseError("missing value for command");
  return commands;
}

function operand(t: Token, c: Cursor): Operand {
  switch (t.kind) {
    case "field":
      return { kind: "field", path: t.path, text: `.${t.path.join(".")}` };
    case "var":
      return { kind: "var", name: t.name, path: t.path, text: [t.name, ...t.path].join(".") };
    case "string":
      return { kind: "literal", value: t.value, text: JSON.stringify(t.value) };
    case "number":
      return { kind: "literal", value: t.value, text: String(t.value) };
    case "ident":
      if (t.name === "true" || t.name === "false")
        return { kind: "literal", value: t.name === "true", text: t.name };
      if (t.name === "nil") return { kind: "literal", value: null, text: "nil" };
      if (!(t.name in templateFunctions))
        throw new TemplateParseError(`function "${t.name}" not defined`);
      return { kind: "ident", name: t.name, text: t.name };
    default: {
      if (t.value !== "(") throw new TemplateParseError(`unexpected "${t.value}" in operand`);
      const commands = parseCommands(c);
      if ((c.tokens[c.i] as { value?: string } | undefined)?.value !== ")")
        throw new TemplateParseError("unclosed left paren");
      c.i++;
      // (index .X 0).Field
      const next = c.tokens[c.i];
      let path: string[] = [];
      if (next?.kind === "field" && next.path.length) {
        path = next.path;
        c.i++;
      }
      return { kind: "sub", pipe: { decl: [], commands }, path, text: "(…)" };
    }
  }
}

// ---- execution ----------------------------------------------------------

type Vars = Map<string, unknown>;

function execute(nodes: Node[], dot: unknown, vars: Vars, out: string[]): void {
  for (const node of nodes) {
    if (node.kind === "text") out.push(node.text);
    else if (node.kind === "action") {
      const value = runPipeline(node.pipe, dot, vars);
      if (!node.pipe.decl.length) out.push(goString(value));
    } else if (node.kind === "if" || node.kind === "with") {
      const value = runPipeline(node.pipe, dot, vars);
      if (isTrue(value)) execute(node.body, node.kind === "with" ? value : dot, new Map(vars), out);
      else execute(node.alt, dot, new Map(vars), out);
    } else runRange(node, dot, vars, out);
  }
}

function runRange(
  node: { pipe: Pipeline; body: Node[]; alt: Node[] },
  dot: unknown,
  vars: Vars,
  out: string[],
): void {
  const value = evalCommands(node.pipe.commands, dot, vars);
  let entries: [unknown, unknown][] = [];
  if (Array.isArray(value)) entries = value.map((v, i) => [i, v]);
  else if (value && typeof value === "object")
    entries = Object.keys(value)
      .sort()
      .map((k) => [k, (value as Record<string, unknown>)[k]]);
  else if (typeof value === "number") entries = Array.from({ length: value }, (_, i) => [i, i]);
  else if (value !== null && value !== undefined)
    throw new MiniboxError(
      `template: :1: executing "" at <${node.pipe.commands[0]?.[0]?.text}>: range can't iterate over ${goString(value)}`,
    );
  if (!entries.length) {
    execute(node.alt, dot, new Map(vars), out);
    return;
  }
  for (const [key, item] of entries) {
    const scope = new Map(vars);
    const [first, second] = node.pipe.decl;
    if (second !== undefined) {
      scope.set(first as string, key);
      scope.set(second, item);
    } else if (first !== undefined) scope.set(first, item);
    execute(node.body, item, scope, out);
  }
}

function runPipeline(pipe: Pipeline, dot: unknown, vars: Vars): unknown {
  const value = evalCommands(pipe.commands, dot, vars);
  if (pipe.decl[0]) vars.set(pipe.decl[0], value);
  return value;
}

function evalCommands(commands: Operand[][], dot: unknown, vars: Vars): unknown {
  let piped: unknown[] = [];
  let value: unknown;
  for (const command of commands) {
    value = evalCommand(command, dot, vars, piped);
    piped = [value];
  }
  return value;
}

function evalCommand(command: Operand[], dot: unknown, vars: Vars, piped: unknown[]): unknown {
  const [head, ...rest] = command as [Operand, ...Operand[]];
  const args = () => [...rest.map((o) => evalOperand(o, dot, vars)), ...piped];
  if (head.kind === "ident") return callFunction(head.name, args());
  if (head.kind === "field" || head.kind === "var" || head.kind === "sub") {
    const value = evalOperand(head, dot, vars);
    if (typeof value === "function") return value(...args());
  }
  if (rest.length || piped.length)
    fail(head.text, `can't give argument to non-function ${head.text}`);
  return evalOperand(head, dot, vars);
}

function evalOperand(o: Operand, dot: unknown, vars: Vars): unknown {
  switch (o.kind) {
    case "literal":
      return o.value;
    case "ident":
      return callFunction(o.name, []);
    case "field":
      return walk(dot, o.path, o.text);
    case "var":
      if (!vars.has(o.name)) fail(o.text, `undefined variable: ${o.name}`);
      return walk(vars.get(o.name), o.path, o.text);
    default:
      return walk(evalCommands(o.pipe.commands, dot, vars), o.path, o.text);
  }
}

/** Follow .A.B; a missing field is an error (Docker's structs), as Go reports it. */
function walk(value: unknown, path: string[], text: string): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== "object" || !(key in current)) {
      fail(text, `can't evaluate field ${key}`);
    }
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function callFunction(name: string, args: unknown[]): unknown {
  const fn = templateFunctions[name] as (...a: unknown[]) => unknown;
  try {
    return fn(...args);
  } catch (err) {
    if (err instanceof MiniboxError) throw err;
    fail(name, `error calling ${name}: ${(err as Error).message}`);
  }
}

function fail(at: string, message: string): never {
  throw new MiniboxError(
    `template: :1: executing "" at <${at}>: ${message}`,
    "check the field name (they are case-sensitive)",
  );
}
