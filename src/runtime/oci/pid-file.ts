/** The --pid-file of create, run and exec: written whole (temp file, rename), as runc does — callers poll for it. */
import { closeSync, openSync, renameSync, writeSync } from "node:fs";

export function writePidFile(file: string, pid: number): void {
  const tmp = `${file}.minibox-tmp`;
  const fd = openSync(tmp, "w", 0o644);
  writeSync(fd, String(pid));
  closeSync(fd);
  renameSync(tmp, file);
}
