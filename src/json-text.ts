/**
 * JSON.stringify for values that may hold BigInts: an event's timeNano is a
 * count of nanoseconds since 1970, past 2^53, so a JS number would round it.
 * A BigInt is written as the exact integer it is, unquoted, as Go writes an
 * int64 — what `docker events --format '{{json .}}'` prints.
 */
import { randomBytes } from "node:crypto";

export function jsonText(value: unknown): string {
  const big: string[] = [];
  // A marker no string in the value can hold (NUL and a fresh nonce), replaced after.
  const mark = `\u0000${randomBytes(6).toString("hex")}:`;
  const text = JSON.stringify(value === undefined ? null : value, (_key, v: unknown) =>
    typeof v === "bigint" ? `${mark}${big.push(v.toString()) - 1}` : v,
  );
  if (big.length === 0) return text;
  const quoted = JSON.stringify(mark).slice(1, -1);
  return text.replace(
    new RegExp(`"${quoted.replace(/\\/g, "\\\\")}(\\d+)"`, "g"),
    (_, i: string) => big[Number(i)] as string,
  );
}
