// A minimal DNS client for tests: one question over UDP or TCP, the
// answer's rcode and A records. Used against minibox-dns on an address the
// test owns.
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { connect } from "node:net";

export interface DnsAnswer {
  /** 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN. */
  rcode: number;
  addresses: string[];
}

function queryMessage(name: string, type: number): Buffer {
  const head = Buffer.alloc(12);
  randomBytes(2).copy(head, 0);
  head.writeUInt16BE(0x0100, 2); // RD
  head.writeUInt16BE(1, 4);
  const labels = name
    .split(".")
    .map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const tail = Buffer.alloc(5);
  tail.writeUInt16BE(type, 1);
  tail.writeUInt16BE(1, 3);
  return Buffer.concat([head, ...labels, tail]);
}

function parseAnswer(query: Buffer, msg: Buffer): DnsAnswer {
  if (msg.readUInt16BE(0) !== query.readUInt16BE(0)) throw new Error("answer to another query");
  const addresses: string[] = [];
  let off = query.length;
  for (let i = 0; i < msg.readUInt16BE(6); i++) {
    const type = msg.readUInt16BE(off + 2);
    const len = msg.readUInt16BE(off + 10);
    if (type === 1) addresses.push([...msg.subarray(off + 12, off + 16)].join("."));
    off += 12 + len;
  }
  return { rcode: msg[3] & 0x0f, addresses };
}

/** Ask `server`:53 for `name` (type A unless given); rejects after `timeoutMs`. */
export function dnsQuery(
  server: string,
  name: string,
  type = 1,
  timeoutMs = 5000,
): Promise<DnsAnswer> {
  const query = queryMessage(name, type);
  const sock = createSocket("udp4");
  return new Promise<DnsAnswer>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no answer from ${server} for ${name}`)),
      timeoutMs,
    );
    sock.on("message", (msg) => {
      clearTimeout(timer);
      try {
        resolve(parseAnswer(query, msg));
      } catch (err) {
        reject(err);
      }
    });
    sock.on("error", reject);
    sock.send(query, 53, server);
  }).finally(() => sock.close());
}

/** The same question over TCP (as a client retries after a truncated answer). */
export function dnsQueryTcp(server: string, name: string, timeoutMs = 5000): Promise<DnsAnswer> {
  const query = queryMessage(name, 1);
  const length = Buffer.alloc(2);
  length.writeUInt16BE(query.length);
  return new Promise<DnsAnswer>((resolve, reject) => {
    const sock = connect(53, server, () => sock.write(Buffer.concat([length, query])));
    let buf = Buffer.alloc(0);
    sock.setTimeout(timeoutMs, () => {
      sock.destroy();
      reject(new Error(`no answer from ${server} for ${name} over TCP`));
    });
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
      sock.destroy();
      try {
        resolve(parseAnswer(query, buf.subarray(2, 2 + buf.readUInt16BE(0))));
      } catch (err) {
        reject(err);
      }
    });
    sock.on("error", reject);
  });
}
