/**
 * Parsing for the `--format` templates (template.ts): splitting the source
 * into text and `{{ actions }}`, lexing an action, and building the tree of
 * text, actions and if/with/range blocks that template.ts executes. Errors
 * are Docker's one line: "template parsing error: template: :1: …".
 */
import { MiniboxError } from "../errors.js";
import { templateFunctions } from "./template-functions.js";

type Token =
  | { kind: "field"; path: string[] } // .A.B  (empty path: the dot)
  | { kind: "var"; name: string; path: string[] } // $x.A
  | { kind: "string"; value: string }
  | { kind: "number"; value: number }
  | { kind: "ident"; name: string }
  | { kind: "punct"; value: "|" | "(" | ")" | ":=" | "," };

export type Operand =
  | { kind: "field"; path: string[]; text: string }
  | { kind: "var"; name: string; path: string[]; text: string }
  | { kind: "literal"; value: unknown; text: string }
  | { kind: "ident"; name: string; text: string }
  | { kind: "sub"; pipe: Pipeline; path: string[]; text: string };

export interface Pipeline {
  decl: string[];
  commands: Operand[][];
}

export type Node =
  | { kind: "text"; text: string }
  | { kind: "action"; pipe: Pipeline }
  | { kind: "if" | "with" | "range"; pipe: Pipeline; body: Node[]; alt: Node[] };

export class TemplateParseError extends MiniboxError {
  constructor(message: string) {
    super(`template parsing error: template: :1: ${message}`);
  }
}

/** The template's tree; throws TemplateParseError on bad input. */
export function parseNodes(source: string): Node[] {
  const parser = new Parser(splitActions(source));
  const nodes = parser.list(new Set());
  if (parser.pending()) throw new TemplateParseError(`unexpected {{${parser.peekText()}}}`);
  return nodes;
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
