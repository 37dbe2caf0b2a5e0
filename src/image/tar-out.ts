/**
 * Writing tar streams with tar-stream: what `save`, `export` and the build's
 * layer writer (src/build/diff.ts) share. Each decides which entries to
 * write; these helpers only put them in the stream, in order, with
 * backpressure.
 */
import fs from "node:fs";
import { pipeline } from "node:stream/promises";
import type tar from "tar-stream";

export type TarHeader = Parameters<tar.Pack["entry"]>[0] & { pax?: Record<string, string> };

/** What may follow the tar in the pipeline: transforms (streams or async generators), a destination. */
type PipelineStage =
  | NodeJS.ReadWriteStream
  | NodeJS.WritableStream
  | ((source: AsyncIterable<Buffer>) => AsyncIterable<Buffer>);

const EMPTY = Buffer.alloc(0);

/** An entry with no body (directory, link, device) or a small in-memory one. */
export function addEntry(pack: tar.Pack, header: TarHeader, body: Buffer = EMPTY): Promise<void> {
  return new Promise((resolve, reject) => {
    // A buffer (even empty) ends the entry at once: a "file" entry given none
    // would wait for content to be written to it.
    pack.entry(header, body, (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * A regular file, streamed from disk. The header needs the size up front; if
 * the file changed size since it was measured, tar-stream fails the entry
 * rather than writing a corrupt tar.
 */
export async function addFileEntry(
  pack: tar.Pack,
  header: TarHeader,
  path: string,
  size: number,
): Promise<void> {
  // O_NOFOLLOW: never read through a symlink swapped in since lstat.
  const handle = await fs.promises.open(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    await new Promise<void>((resolve, reject) => {
      const sink = pack.entry({ ...header, type: "file", size }, (err) =>
        err ? reject(err) : resolve(),
      );
      pipeline(
        handle.createReadStream({ autoClose: false }),
        sink as unknown as NodeJS.WritableStream,
      ).catch(reject);
    });
  } finally {
    await handle.close();
  }
}

/**
 * Run `produce` (which adds the entries) while the tar flows through
 * `sinks` (transforms, then the destination). On any failure both sides are
 * stopped before the error is thrown, so nothing writes afterwards.
 */
export async function streamTar(
  pack: tar.Pack,
  produce: () => Promise<void>,
  ...sinks: PipelineStage[]
): Promise<void> {
  const producing = produce().then(
    () => pack.finalize(),
    (err: unknown) => {
      pack.destroy(err as Error);
      throw err;
    },
  );
  // (tar-stream's streams are streamx streams, which pipeline() accepts but
  // whose types do not name Node's stream interfaces: hence the cast.)
  const consuming = (pipeline as (...streams: unknown[]) => Promise<void>)(pack, ...sinks);
  try {
    await Promise.all([producing, consuming]);
  } catch (err) {
    pack.destroy();
    await Promise.allSettled([producing, consuming]);
    throw err;
  }
}
