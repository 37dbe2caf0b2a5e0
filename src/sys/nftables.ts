/**
 * nftables through libnftables (Debian's libnftables1), bound with koffi —
 * the library `nft` itself is a thin front end to, so minibox gets the same
 * parser, the same JSON and the same atomic batches without spawning a
 * process.
 *
 * One context per call: a context holds its output buffers and opens its
 * netlink socket in the network namespace of the calling thread, so a fresh
 * one never carries a previous command's output or namespace along.
 */
import { MiniboxError } from "../errors.js";
import { koffi as loadKoffi } from "./koffi.js";

type Fn = (...args: unknown[]) => unknown;

interface Libnftables {
  ctxNew: Fn;
  ctxFree: Fn;
  outputSetFlags: Fn;
  bufferOutput: Fn;
  bufferError: Fn;
  runCmdFromBuffer: Fn;
  getOutputBuffer: Fn;
  getErrorBuffer: Fn;
}

/** nft_ctx_new's only flag value (<nftables/libnftables.h>). */
const NFT_CTX_DEFAULT = 0;
/** Output (and so listings) in libnftables' JSON schema. */
const NFT_CTX_OUTPUT_JSON = 1 << 4;

export const LIBNFTABLES = "libnftables.so.1";

let bound: Libnftables | undefined;

/**
 * Load koffi and the library on first use, not at start-up: only networking
 * needs it, and a machine without libnftables1 must still run everything else.
 */
function lib(): Libnftables {
  if (bound) return bound;
  const koffi = loadKoffi();
  let so: ReturnType<typeof koffi.load>;
  try {
    so = koffi.load(LIBNFTABLES);
  } catch (e) {
    throw new MiniboxError(
      `cannot load ${LIBNFTABLES}: ${(e as Error).message}`,
      "install libnftables1 (apt-get install libnftables1)",
    );
  }
  koffi.opaque("nft_ctx");
  bound = {
    ctxNew: so.func("nft_ctx *nft_ctx_new(uint32_t flags)"),
    ctxFree: so.func("void nft_ctx_free(nft_ctx *ctx)"),
    outputSetFlags: so.func("void nft_ctx_output_set_flags(nft_ctx *ctx, unsigned int flags)"),
    bufferOutput: so.func("int nft_ctx_buffer_output(nft_ctx *ctx)"),
    bufferError: so.func("int nft_ctx_buffer_error(nft_ctx *ctx)"),
    runCmdFromBuffer: so.func("int nft_run_cmd_from_buffer(nft_ctx *ctx, const char *buf)"),
    getOutputBuffer: so.func("const char *nft_ctx_get_output_buffer(nft_ctx *ctx)"),
    getErrorBuffer: so.func("const char *nft_ctx_get_error_buffer(nft_ctx *ctx)"),
  };
  return bound;
}

/** A command libnftables refused: its own error text, as `nft` would print it. */
export class NftError extends MiniboxError {
  constructor(readonly detail: string) {
    super(`nftables: ${errorLines(detail) || "command failed"}`);
    this.name = "NftError";
  }
}

/**
 * The message lines of libnftables' error text, without the echo of the
 * command and the caret line under it (a JSON batch is one long line).
 */
export function errorLines(detail: string): string {
  return detail
    .split("\n")
    .filter((l) => /Error:/.test(l))
    .map((l) => l.replace(/^internal:0:0-0: /, "").trim())
    .join("; ");
}

/**
 * Run one nftables command batch — libnftables' JSON (`{"nftables": [...]}`)
 * or nft's text syntax; the library tells them apart — and return what it
 * printed (JSON for listings). A batch is one netlink transaction: it
 * applies whole or not at all.
 */
export function runNft(jsonOrText: string): string {
  const l = lib();
  const ctx = l.ctxNew(NFT_CTX_DEFAULT);
  if (!ctx) throw new NftError("nft_ctx_new failed");
  try {
    l.outputSetFlags(ctx, NFT_CTX_OUTPUT_JSON);
    l.bufferOutput(ctx);
    l.bufferError(ctx);
    const rc = l.runCmdFromBuffer(ctx, jsonOrText) as number;
    if (rc !== 0) throw new NftError(String(l.getErrorBuffer(ctx) ?? ""));
    return String(l.getOutputBuffer(ctx) ?? "");
  } finally {
    l.ctxFree(ctx);
  }
}

/** runNft for a listing: the parsed `nftables` array of libnftables' JSON output. */
export function listNft(command: string): unknown[] {
  const out = runNft(command);
  if (!out.trim()) return [];
  return (JSON.parse(out) as { nftables: unknown[] }).nftables;
}
