/**
 * JSON.stringify for values that may hold BigInts: an event's timeNano is a
 * count of nanoseconds since 1970, past 2^53, so a JS number would round it.
 * A BigInt is written as the exact integer it is, unquoted, as Go writes an
 * int64 — what `docker events --format '{{json .}}'` prints.
 */
export function jsonText(value: unknown): string {
  const big: string[] = [];
  const text = JSON.stringify(value === undefined ? null : value, (_key, v: unknown) =>
    typeof v === "bigint" ? `\u0000bigint:${big.push(v.toString()) - 1}` : v,
  );
  return text.replace(/"\\u0000bigint:(\d+)"/g, (_, i: string) => big[Number(i)] as string);
}
