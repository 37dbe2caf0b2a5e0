/**
 * `--format` for list commands (ps, images, history, volume ls, network ls,
 * stats), as Docker's cli/command/formatter does it:
 * - no format or "table": the command's own table;
 * - "json": one JSON object per line (Docker 23+);
 * - "table TEMPLATE": a header row made by rendering TEMPLATE against the
 *   column names (so `table {{.ID}}\t{{.Image}}` heads "CONTAINER ID   IMAGE"),
 *   then one row per item, aligned like Go's tabwriter(minwidth 10, padding 3);
 * - anything else: TEMPLATE per item, one line each.
 * A literal `\t` or `\n` in the format is a tab or newline, as in Docker.
 */
import { parseTemplate, renderTemplate } from "./template.js";

/** Row fields that are methods ({{.Label "k"}}) take arguments; the header context ignores them. */
export type Headers = Record<string, string>;

export function formatList(
  format: string | undefined,
  rows: object[],
  headers: Headers,
  defaultTable: () => string,
): string[] {
  if (format === undefined || format.trim() === "" || format.trim() === "table")
    return [defaultTable()];
  if (format.trim() === "json") return rows.map((r) => JSON.stringify(r));
  const isTable = format.startsWith("table");
  const source = (isTable ? format.slice("table".length) : format)
    .replace(/^ +| +$/g, "")
    .replace(/\\t/g, "\t")
    .replace(/\\n/g, "\n");
  const template = parseTemplate(source);
  const lines = rows.map((r) => renderTemplate(template, r));
  if (!isTable) return lines;
  const header = renderTemplate(template, headerContext(headers));
  return [tabwrite([header, ...lines].join("\n"))];
}

/** The header context: each field renders as its column name; methods too. */
function headerContext(headers: Headers): Record<string, unknown> {
  const context: Record<string, unknown> = {};
  for (const [field, name] of Object.entries(headers))
    context[field] = field === "Label" ? () => name : name;
  return context;
}

/**
 * Go's text/tabwriter as Docker configures it: a cell is text ended by a tab;
 * each column is as wide as its widest cell plus 3, at least 10; the last
 * cell of a line is not padded.
 */
export function tabwrite(text: string, minWidth = 10, padding = 3): string {
  const lines = text.split("\n").map((l) => l.split("\t"));
  const widths: number[] = [];
  for (const cells of lines)
    cells.slice(0, -1).forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, Math.max([...c].length + padding, minWidth));
    });
  return lines
    .map((cells) =>
      cells
        .map((c, i) =>
          i === cells.length - 1 ? c : c + " ".repeat((widths[i] ?? 0) - [...c].length),
        )
        .join(""),
    )
    .join("\n");
}

/**
 * The `inspect` commands' output: the objects as an indented JSON array
 * (Docker's default), one compact JSON line each for `--format json`, or a
 * Go template per object.
 */
export function printInspect(results: unknown[], format: string | undefined): void {
  if (!format) console.log(JSON.stringify(results, null, 4));
  else if (format === "json") for (const r of results) console.log(JSON.stringify(r));
  else for (const r of results) console.log(renderTemplate(format, r));
}
