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
import { type Node, type Operand, type Pipeline, parseNodes } from "./template-parse.js";
import { goString, isTrue } from "./template-values.js";

export { TemplateParseError } from "./template-parse.js";

export interface Template {
  nodes: Node[];
}

/** Parse once; throws TemplateParseError (Docker's wording) on bad input. */
export function parseTemplate(source: string): Template {
  return { nodes: parseNodes(source) };
}

/** Render a parsed template (or a source string) against data. */
export function renderTemplate(template: string | Template, data: unknown): string {
  const parsed = typeof template === "string" ? parseTemplate(template) : template;
  const out: string[] = [];
  execute(parsed.nodes, data, new Map([["$", data]]), out);
  return out.join("");
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
