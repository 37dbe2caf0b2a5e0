/**
 * An error a user can act on. The CLI prints `minibox: <message>` as one line
 * (plus the hint, if any, after a semicolon) and exits non-zero without a
 * stack trace; anything that is *not* a MiniboxError is a bug and is printed
 * with its stack under --debug.
 */
export class MiniboxError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = "MiniboxError";
  }

  /** The one line the CLI prints. */
  userLine(): string {
    return this.hint ? `${this.message}; ${this.hint}` : this.message;
  }
}
