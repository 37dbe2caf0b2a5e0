/**
 * An event as `docker events` shows it: Docker's events.Message. Templates
 * see Go's field names ({{.Type}}, {{.Actor.ID}}, {{.TimeNano}}, and the
 * deprecated {{.Status}}, {{.ID}}, {{.From}} Docker still fills for container
 * and image events); `{{json .}}` writes its JSON names (status, id, from,
 * Type, Action, Actor, scope, time, timeNano).
 */
import type { MiniboxEvent } from "../events/journal.js";

export class EventView {
  // Go's zero values where Docker leaves them unset: {{.Status}} prints "".
  readonly Status: string = "";
  readonly ID: string = "";
  readonly From: string = "";
  readonly Type: string;
  readonly Action: string;
  readonly Actor: { ID: string; Attributes: Record<string, string> };
  readonly Scope: string;
  readonly Time: number;
  readonly TimeNano: bigint;

  constructor(e: MiniboxEvent) {
    if (e.Type === "container" || e.Type === "image") {
      this.Status = e.Action;
      this.ID = e.Actor.ID;
      if (e.Type === "container") this.From = e.Actor.Attributes.image ?? "";
    }
    this.Type = e.Type;
    this.Action = e.Action;
    this.Actor = e.Actor;
    this.Scope = e.scope;
    this.Time = e.time;
    this.TimeNano = e.timeNano;
  }

  /** Docker's JSON: omitempty on the deprecated fields, in its field order. */
  toJSON(): Record<string, unknown> {
    return {
      ...(this.Status ? { status: this.Status } : {}),
      ...(this.ID ? { id: this.ID } : {}),
      ...(this.From ? { from: this.From } : {}),
      Type: this.Type,
      Action: this.Action,
      Actor: this.Actor,
      scope: this.Scope,
      time: this.Time,
      timeNano: this.TimeNano,
    };
  }
}

/**
 * Docker's default line: the time (RFC 3339 with nanoseconds, local zone),
 * type, action, actor ID, and the attributes sorted by key in parentheses:
 * `2024-01-02T03:04:05.000000000Z container start 3f2a… (image=busybox, name=web)`.
 */
export function eventLine(e: MiniboxEvent): string {
  const attributes = Object.keys(e.Actor.Attributes)
    .sort()
    .map((k) => `${k}=${e.Actor.Attributes[k]}`);
  const tail = attributes.length > 0 ? ` (${attributes.join(", ")})` : "";
  return `${rfc3339NanoFixed(e.timeNano)} ${e.Type} ${e.Action} ${e.Actor.ID}${tail}`;
}

/** Go's "2006-01-02T15:04:05.000000000Z07:00" in the local zone ("Z" when it is UTC). */
export function rfc3339NanoFixed(nano: bigint): string {
  const ms = Number(nano / 1_000_000n);
  const fraction = (nano % 1_000_000_000n).toString().padStart(9, "0");
  const offsetMinutes = -new Date(ms).getTimezoneOffset();
  const local = new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, 19);
  if (offsetMinutes === 0) return `${local}.${fraction}Z`;
  const sign = offsetMinutes < 0 ? "-" : "+";
  const abs = Math.abs(offsetMinutes);
  const zone = `${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
  return `${local}.${fraction}${sign}${zone}`;
}
