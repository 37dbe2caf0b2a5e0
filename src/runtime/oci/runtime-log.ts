/**
 * The runtime's log, in runc's two formats (logrus's): text
 *   time="2026-12-03T08:27:21Z" level=error msg="container does not exist"
 * and JSON lines {"level":…,"msg":…,"time":…}. containerd's shim and conmon
 * read the last error from the --log file to explain a failure, so the
 * format is theirs, not minibox's.
 */
import { appendFileSync } from "node:fs";
import { MiniboxError } from "../../errors.js";

export type LogFormat = "text" | "json";
export type LogLevel = "debug" | "info" | "warning" | "error";

export function parseLogFormat(value: string): LogFormat {
  if (value === "text" || value === "json") return value;
  throw new MiniboxError(`invalid log-format: ${value}`);
}

/** RFC 3339 to the second, as Go's time.RFC3339 prints UTC. */
export function logTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** logrus quotes a text value unless it is made only of these characters. */
function textValue(value: string): string {
  return /^[A-Za-z0-9\-._/@^+]+$/.test(value) ? value : JSON.stringify(value);
}

export function formatLogLine(
  level: LogLevel,
  msg: string,
  time: string,
  format: LogFormat,
): string {
  if (format === "json") return JSON.stringify({ level, msg, time });
  return `time=${textValue(time)} level=${level} msg=${textValue(msg)}`;
}

export interface LogTarget {
  /** --log FILE; without it, records go to stderr. */
  file?: string;
  format: LogFormat;
  debug: boolean;
}

/** Where the runtime's records go, and the last-resort error line on stderr. */
export class RuntimeLog {
  constructor(
    private readonly target: LogTarget,
    private readonly now: () => Date = () => new Date(),
  ) {}

  debug(msg: string): void {
    if (this.target.debug) this.write("debug", msg);
  }

  /**
   * A failure, as runc reports one: the record goes to the log; when the log
   * is a file, stderr gets the bare message as well, so a caller that only
   * reads stderr still sees why.
   */
  error(msg: string): void {
    this.write("error", msg);
    if (this.target.file) process.stderr.write(`${msg}\n`);
  }

  private write(level: LogLevel, msg: string): void {
    const line = `${formatLogLine(level, msg, logTime(this.now()), this.target.format)}\n`;
    if (this.target.file) appendFileSync(this.target.file, line, { mode: 0o600 });
    else process.stderr.write(line);
  }
}
