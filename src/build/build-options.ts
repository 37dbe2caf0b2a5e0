/**
 * What `build` is given by its caller (the CLI): the Dockerfile and context,
 * and the callbacks that run a RUN step's container, pull a FROM image and
 * print — and the error that ends a build the user interrupted.
 */
import { MiniboxError } from "../errors.js";
import type { ImageConfig, Platform } from "../image/manifest.js";
import type { ImageRecord } from "../image/store.js";

export interface BuildOptions {
  contextDir: string;
  dockerfile: string;
  tags: string[];
  buildArgs: Record<string, string>;
  noCache: boolean;
  /** --target: stop after this stage. */
  target?: string;
  labels: Record<string, string>;
  quiet: boolean;
  platform: Platform;
  /** Runs one RUN step in a container; returns its exit code and the container's upper dir + owner shift. */
  runStep: (image: ImageRecord, argv: string[], config: ImageConfig) => Promise<RunStepResult>;
  /** True once the user interrupted the build: it stops at the next step boundary. */
  cancelled?: () => boolean;
  /** Make sure FROM's image is in the store (pull it). */
  pull: (name: string) => Promise<ImageRecord>;
  out: (line: string) => void;
}

export interface RunStepResult {
  code: number;
  containerId: string;
  upperDir: string;
  idShift?: { uid: number; gid: number };
  remove: () => Promise<void>;
}

/** Ctrl-C or SIGTERM ended the build (exit 130, like a shell's interrupted command). */
export class BuildInterrupted extends MiniboxError {
  constructor() {
    super("the build was interrupted", undefined, 130);
  }
}

export function stopIfCancelled(opts: BuildOptions): void {
  if (opts.cancelled?.()) throw new BuildInterrupted();
}
