/** Byte counts as Docker prints them, for every part of minibox that reports a size. */

/**
 * Docker's units.HumanSize: decimal units, 4 significant digits ("3.072kB",
 * "5.59MB", "0B"); `stats` uses HumanSizeWithPrecision(…, 3) for NET I/O.
 */
export function humanSize(bytes: number, digits = 4): string {
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${formatG(value, digits)}${units[unit]}`;
}

/** C's "%.<digits>g": that many significant digits, trailing zeros dropped. */
function formatG(value: number, digits: number): string {
  if (value === 0) return "0";
  return String(Number(value.toPrecision(digits)));
}

/** Docker's units.BytesSize, as `stats` shows memory: binary units ("1.5MiB / 80MiB"). */
export function binarySize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${Number(v.toFixed(2))}${units[u]}`;
}
