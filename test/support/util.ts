// Small helpers shared by the test-support modules. No vitest imports: the
// benchmarks reuse these modules outside of a test runner.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import http from "node:http";
import net from "node:net";

export interface ExecResult {
  stdout: string;
  stderr: string;
}

/** Error from {@link run}: keeps the tool's output so a failing push is diagnosable. */
export class ExecError extends Error {
  constructor(
    message: string,
    readonly code: number | string | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(message);
    this.name = "ExecError";
  }
}

/**
 * Runs a program without a shell (arguments are never re-parsed) and resolves
 * with its output; rejects with an {@link ExecError} carrying stderr.
 */
export function run(
  file: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        env: opts.env ?? process.env,
        cwd: opts.cwd,
        timeout: opts.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
        encoding: "utf8",
      },
      (err, stdout, stderr) => {
        if (err) {
          const code = (err as NodeJS.ErrnoException & { code?: number | string }).code ?? null;
          reject(
            new ExecError(
              `${file} ${args.join(" ")} failed (${code}): ${stderr.trim() || err.message}`,
              code,
              stdout,
              stderr,
            ),
          );
          return;
        }
        resolve({ stdout, stderr });
      },
    );
  });
}

export function sha256(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${sha256(data)}`;
}

/**
 * Asks the kernel for a free loopback port. There is a small window between
 * closing this socket and the registry binding the port; on a test VM that is
 * acceptable, and it is the only way to hand a port to a process that takes
 * its address from a config file.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      if (addr === null || typeof addr === "string") {
        srv.close();
        reject(new Error("could not get a free port"));
        return;
      }
      const port = addr.port;
      srv.close(() => resolve(port));
    });
  });
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** Minimal loopback HTTP client (fetch would do, but this keeps raw bytes and headers simple). */
export function httpRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<HttpResponse> {
  const u = new URL(url);
  if (u.hostname !== "127.0.0.1") {
    // Network rule: tests only ever talk to loopback.
    return Promise.reject(new Error(`refusing non-loopback URL ${url}`));
  }
  return new Promise((resolve, reject) => {
    const req = http.request(
      u,
      { method: opts.method ?? "GET", headers: opts.headers, timeout: opts.timeoutMs ?? 5000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timeout: ${url}`)));
    req.on("error", reject);
    req.end();
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** True while a process with this PID exists (EPERM still means it exists). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
