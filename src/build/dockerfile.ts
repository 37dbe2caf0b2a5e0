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
import { type Instruction, parseInstruction } from "./instructions.js";

export type { Instruction } from "./instructions.js";
export { expand } from "./shell-words.js";

const DIRECTIVE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;

function isComment(line: string): boolean {
  return /^[ \t]*#/.test(line);
}

export function parseDockerfile(text: string, file = "Dockerfile"): Instruction[] {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const { esc, first } = readDirectives(lines, file);
  const out: Instruction[] = [];
  let sawFrom = false;
  for (const { raw, line } of logicalLines(lines, first, esc)) {
    const parsed = parseInstruction(raw, line, esc, (msg) => {
      throw new MiniboxError(`${file}:${line}: ${msg}`);
    });
    for (const ins of parsed) {
      if (ins.kind === "FROM") sawFrom = true;
      else if (!sawFrom && ins.kind !== "ARG") {
        throw new MiniboxError(`${file}:${line}: no FROM before ${ins.kind}`);
      }
      out.push(ins);
    }
  }
  if (out.length === 0) throw new MiniboxError(`${file}: file with no instructions`);
  return out;
}

/**
 * Parser directives: only at the very top, until the first other line. Returns
 * the escape token and the index of the first line after them (directive
 * lines are comments, so they need no other treatment).
 */
function readDirectives(lines: string[], file: string): { esc: string; first: number } {
  let esc = "\\";
  const seen = new Set<string>();
  let i = 0;
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
  return { esc, first: i };
}

/**
 * Instructions as single lines: continuations joined, comments and empty
 * continuation lines dropped (Docker warns about those), each with the line
 * number it starts on.
 */
function* logicalLines(
  lines: string[],
  first: number,
  esc: string,
): Generator<{ raw: string; line: number }> {
  const continuation = new RegExp(`${escapeRe(esc)}[ \\t]*$`);
  for (let i = first; i < lines.length; i++) {
    if (isComment(lines[i])) continue;
    const startLine = i + 1;
    let line = lines[i].replace(/^[ \t]+/, "");
    let ended = !continuation.test(line);
    if (!ended) line = line.replace(continuation, "");
    if (ended && line.trim() === "") continue;
    while (!ended && i + 1 < lines.length) {
      i++;
      const next = lines[i];
      if (isComment(next) || next.trim() === "") continue;
      ended = !continuation.test(next);
      line += ended ? next : next.replace(continuation, "");
    }
    const raw = line.trim();
    if (raw !== "") yield { raw, line: startLine }; // else only continuations and comments
  }
}

function escapeRe(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&");
}
