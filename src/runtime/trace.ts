/** --trace output: one line per step, with the time since minibox started. */
export type Tracer = (line: string, durationMs?: number, atMs?: number) => void;

/** No --trace: the executor is then not asked to report its steps either. */
export const NO_TRACE: Tracer = () => {};
