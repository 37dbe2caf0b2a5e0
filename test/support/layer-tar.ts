// Layer tarballs built in memory for the unpack tests (test/unit/layer.test.ts
// for what needs no privilege, test/integration/layer-unpack.test.ts for what
// needs root: owners, device nodes, trusted.* xattrs).
import { createHash } from "node:crypto";
import tar from "tar-stream";

type Header = Parameters<ReturnType<typeof tar.pack>["entry"]>[0];

export interface TestEntry extends Header {
  content?: string | Buffer;
}

export const T1 = new Date("2001-02-03T04:05:06Z");
export const T2 = new Date("2010-01-01T00:00:00Z");

/** Builds an uncompressed tar in memory. */
export async function makeTar(entries: TestEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const { content, ...header } of entries) {
    pack.entry({ mtime: T1, ...header }, content ?? Buffer.alloc(0));
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export const sha256 = (data: Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;
