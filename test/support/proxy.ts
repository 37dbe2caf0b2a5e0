// A loopback HTTP proxy placed between minibox and a real registry, so tests
// can see and shape the traffic: count blob downloads, slow them down (to
// kill a pull mid-flight), or cut a connection once (to test resuming).
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface ProxyOptions {
  /** Bytes per second for blob bodies (0 = unthrottled). */
  bytesPerSecond?: number;
  /** Cut the first response for this blob digest after this many bytes. */
  dropOnce?: { digest: string; afterBytes: number };
  /**
   * The registry names the host it was asked for in upload Locations, which
   * would send the rest of an upload around the proxy. Rewrite them to point
   * back here: as an absolute URL, or as a path (both are legal).
   */
  location?: "absolute" | "relative";
}

export interface ProxyLog {
  method: string;
  url: string;
  range?: string;
  status: number;
}

export interface Proxy {
  address: string;
  log: ProxyLog[];
  blobGets(digest: string): ProxyLog[];
  close(): Promise<void>;
}

export async function startProxy(target: string, options: ProxyOptions = {}): Promise<Proxy> {
  const [host, port] = target.split(":");
  const log: ProxyLog[] = [];
  let dropped = false;
  let address = "";
  const server = http.createServer((req, res) => {
    const upstream = http.request(
      {
        host,
        port: Number(port),
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target },
      },
      (up) => {
        const entry: ProxyLog = {
          method: req.method ?? "",
          url: req.url ?? "",
          range: req.headers.range,
          status: up.statusCode ?? 0,
        };
        log.push(entry);
        const headers = { ...up.headers };
        if (options.location && headers.location) {
          const where = new URL(headers.location, `http://${target}`);
          const path = `${where.pathname}${where.search}`;
          headers.location = options.location === "relative" ? path : `http://${address}${path}`;
        }
        res.writeHead(up.statusCode ?? 502, headers);
        const isBlob = /\/blobs\/sha256:/.test(req.url ?? "");
        const drop =
          !dropped &&
          options.dropOnce &&
          req.url?.endsWith(options.dropOnce.digest) &&
          !req.headers.range
            ? options.dropOnce.afterBytes
            : undefined;
        let sent = 0;
        up.on("data", (chunk: Buffer) => {
          if (drop !== undefined && sent + chunk.length > drop) {
            dropped = true;
            res.write(chunk.subarray(0, drop - sent));
            res.socket?.destroy();
            up.destroy();
            return;
          }
          sent += chunk.length;
          if (!res.write(chunk)) up.pause();
          if (isBlob && options.bytesPerSecond) {
            up.pause();
            setTimeout(() => up.resume(), (chunk.length / options.bytesPerSecond) * 1000);
          }
        });
        res.on("drain", () => up.resume());
        up.on("end", () => res.end());
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    address,
    log,
    blobGets: (digest) =>
      log.filter((l) => l.method === "GET" && l.url.endsWith(`/blobs/${digest}`)),
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
