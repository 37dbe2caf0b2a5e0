// A stand-in for "the internet's" nameserver, run by network-dns.test.ts in
// its own upstream network namespace (`ip netns exec NS node dns-upstream.mjs
// ADDR JSON`): answers A queries for the names of JSON ({"name": "ip"}) and
// NXDOMAIN for any other, on UDP and TCP ADDR:53. Prints {"ready":true} once
// bound; runs until killed.
import { createSocket } from "node:dgram";
import { createServer } from "node:net";

const [addr, json] = process.argv.slice(2);
const names = JSON.parse(json ?? "{}");

/** The question's name (lower case, dotted) and where the question ends. */
function question(msg) {
  const labels = [];
  let off = 12;
  while (msg[off] !== 0) {
    labels.push(
      msg
        .subarray(off + 1, off + 1 + msg[off])
        .toString()
        .toLowerCase(),
    );
    off += 1 + msg[off];
  }
  return { name: labels.join("."), type: msg.readUInt16BE(off + 1), end: off + 5 };
}

function answer(msg) {
  const q = question(msg);
  const ip = names[q.name];
  const head = Buffer.from(msg.subarray(0, q.end));
  head.writeUInt16BE(0x8180 | (ip === undefined ? 3 : 0), 2);
  const records = ip !== undefined && q.type === 1 ? [ip] : [];
  head.writeUInt16BE(records.length, 6);
  head.writeUInt32BE(0, 8);
  const rr = records.map((a) => {
    const r = Buffer.alloc(16);
    r.writeUInt16BE(0xc00c, 0);
    r.writeUInt16BE(1, 2);
    r.writeUInt16BE(1, 4);
    r.writeUInt32BE(60, 6);
    r.writeUInt16BE(4, 10);
    for (const [i, o] of a.split(".").entries()) r.writeUInt8(Number(o), 12 + i);
    return r;
  });
  return Buffer.concat([head, ...rr]);
}

/** TCP: a 2-byte length, then the message (one query a connection is all minibox-dns sends). */
function serveTcp(socket) {
  let buf = Buffer.alloc(0);
  socket.on("data", (d) => {
    buf = Buffer.concat([buf, d]);
    if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
    const out = answer(buf.subarray(2, 2 + buf.readUInt16BE(0)));
    const len = Buffer.alloc(2);
    len.writeUInt16BE(out.length);
    socket.end(Buffer.concat([len, out]));
  });
  socket.on("error", () => {});
}

let pending = 2;
const ready = () => --pending === 0 && process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
const sock = createSocket("udp4");
sock.on("message", (m, r) => sock.send(answer(m), r.port, r.address));
sock.bind(53, addr, ready);
createServer(serveTcp).listen(53, addr, ready);
