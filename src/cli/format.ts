/** Output shapes Docker users know: sizes, ages, aligned tables. */

// Sizes are shared with the build (its context line): they live outside the CLI.
export { binarySize, humanSize } from "../format-size.js";

/** Docker's units.HumanDuration, as used in "2 hours ago" and "Up 3 seconds". */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return "Less than a second";
  if (seconds === 1) return "1 second";
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return "About a minute";
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(minutes / 60);
  if (hours === 1) return "About an hour";
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(hours / 24 / 365)} years`;
}

export function timeAgo(iso: string, now = Date.now()): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return "N/A";
  return `${humanDuration(now - t)} ago`;
}

/** Columns separated by at least three spaces, like Docker's tabwriter. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd((widths[i] ?? 0) + 3)))
      .join("")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** Shorten with an ellipsis like Docker's `--no-trunc`-less output. */
export function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Go's time.Time.String() in UTC, as Docker's .CreatedAt prints it: "2024-01-02 15:04:05 +0000 UTC". */
export function goTime(iso: string): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return "";
  return `${t.toISOString().slice(0, 19).replace("T", " ")} +0000 UTC`;
}
