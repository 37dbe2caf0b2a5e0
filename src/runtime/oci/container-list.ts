/** `minibox-runc list`: runc's table (Go's tabwriter, 12-column cells) or its JSON. */

export interface ListedContainer {
  id: string;
  pid: number;
  status: string;
  bundle: string;
  created: string;
  owner: string;
}

const HEADER = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];
const MIN_WIDTH = 12;

function row(cells: string[], widths: number[]): string {
  return cells
    .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
    .join("");
}

export function formatListTable(containers: ListedContainer[]): string {
  const rows = [
    HEADER,
    ...containers.map((c) => [c.id, String(c.pid), c.status, c.bundle, c.created, c.owner]),
  ];
  // A cell's column is as wide as its widest cell plus 3 (tabwriter's padding), at least 12.
  const widths = HEADER.map((_, i) =>
    Math.max(MIN_WIDTH, ...rows.map((r) => (r[i]?.length ?? 0) + 3)),
  );
  return `${rows.map((r) => row(r, widths)).join("\n")}\n`;
}

/** runc marshals a nil slice: no container is `null`, not `[]`. */
export function formatListJson(containers: ListedContainer[]): string {
  return `${JSON.stringify(containers.length ? containers : null)}\n`;
}
