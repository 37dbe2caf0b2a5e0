// Lists functions longer than a limit, so "small functions" is a measured
// property of the code, not a wish. Used by a unit test
// (test/unit/code-shape.test.ts) on src/runtime, src/build and src/image.
//   node scripts/function-lengths.mjs [--max 80] DIR...
// A function counts from the line of its declaration to its closing brace.
// Data tables (object and array literals) are not functions and do not count.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";

/** Every function-like node in `file` with its name and length in lines. */
export function functionLengths(file) {
  const text = readFileSync(file, "utf8");
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out = [];
  const visit = (node) => {
    if (
      ts.isFunctionDeclaration(node) ||
      ts.isMethodDeclaration(node) ||
      ts.isArrowFunction(node) ||
      ts.isFunctionExpression(node) ||
      ts.isConstructorDeclaration(node) ||
      ts.isGetAccessorDeclaration(node) ||
      ts.isSetAccessorDeclaration(node)
    ) {
      const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      out.push({ file, name: nameOf(node), line: start + 1, lines: end - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

function nameOf(node) {
  if (node.name) return node.name.getText();
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent)) return parent.name.getText();
  if (parent && ts.isPropertyAssignment(parent)) return parent.name.getText();
  return "(anonymous)";
}

function tsFiles(dir) {
  if (!statSync(dir).isDirectory()) return [dir];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFiles(path);
    return path.endsWith(".ts") ? [path] : [];
  });
}

/** Functions in `dirs` longer than `max` lines. */
export function longFunctions(dirs, max) {
  return dirs
    .flatMap(tsFiles)
    .flatMap(functionLengths)
    .filter((f) => f.lines > max);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  let max = 80;
  const i = args.indexOf("--max");
  if (i >= 0) {
    max = Number(args[i + 1]);
    args.splice(i, 2);
  }
  const long = longFunctions(args.length ? args : ["src"], max);
  for (const f of long.sort((a, b) => b.lines - a.lines))
    console.log(`${f.lines}\t${f.file}:${f.line}\t${f.name}`);
  process.exitCode = long.length ? 1 : 0;
}
