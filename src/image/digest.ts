/** Content digests ("sha256:<hex>"), the identity of every blob in OCI. */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { MiniboxError } from "../errors.js";

const DIGEST = /^sha256:[a-f0-9]{64}$/;

export function isDigest(value: string): boolean {
  return DIGEST.test(value);
}

/** Throws unless `value` is a sha256 digest: a registry's answer is untrusted input. */
export function assertDigest(value: unknown, what: string): string {
  if (typeof value !== "string" || !isDigest(value)) {
    throw new MiniboxError(`invalid ${what} digest ${JSON.stringify(value)}`);
  }
  return value;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

export function digestHex(digest: string): string {
  return digest.slice("sha256:".length);
}

/** Docker's short image ID: the first 12 hex digits. */
export function shortId(digest: string): string {
  return digestHex(digest).slice(0, 12);
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest("hex")}`;
}

/**
 * The OCI chain ID of a layer stack: ChainID(L0) = DiffID(L0),
 * ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln)). It names a
 * layer *in the context of the layers below it*, which is how layer
 * directories are shared between images that share a base.
 */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const diffId of diffIds) {
    const previous = out[out.length - 1];
    out.push(previous === undefined ? diffId : sha256(`${previous} ${diffId}`));
  }
  return out;
}
