/**
 * The two things a build asks of the rest of minibox: run a RUN step in a
 * container (kept until its upper directory has been turned into a layer),
 * and pull a FROM image.
 */
import { readFile } from "node:fs/promises";
import type { CredentialStore } from "../image/credentials.js";
import type { ImageConfig, Platform } from "../image/manifest.js";
import type { PullReporter } from "../image/pull.js";
import type { EndpointOptions } from "../image/registry.js";
import type { ImageRecord, Store } from "../image/store.js";
import type { RunStepResult } from "./build.js";

/** Where a build runs its steps and pulls its images from (what the command line gives it). */
/** Where a RUN step's container is: `build --network`. */
export type BuildNetwork = "none" | "host" | "bridge";

export interface BuildEnvironment {
  store: Store;
  credentials: CredentialStore;
  endpoints: EndpointOptions;
  /** The platform to pull and run for: the host's. */
  platform(): Platform;
}

/**
 * Ctrl-C (or SIGTERM) during a build stops it, as with Docker: the RUN
 * container in progress is killed (its PID 1 would ignore SIGINT) and
 * removed, and the build ends at the next step boundary with nothing tagged.
 */
export class BuildInterrupt {
  cancelled = false;
  /** The name of the RUN container running now, if any. */
  container?: string;
  private readonly onSignal = () => {
    this.cancelled = true;
    if (this.container) void this.kill(this.container);
  };

  constructor(private readonly root: string) {}

  watch(): void {
    process.on("SIGINT", this.onSignal);
    process.on("SIGTERM", this.onSignal);
  }

  unwatch(): void {
    process.off("SIGINT", this.onSignal);
    process.off("SIGTERM", this.onSignal);
  }

  private async kill(name: string): Promise<void> {
    const { findContainer, signalContainer } = await import("../runtime/lifecycle.js");
    // The container may be a moment away from having a PID on record: wait for it (≤ 10 s).
    for (let i = 0; i < 100 && this.container === name; i++) {
      const view = await findContainer(this.root, name).catch(() => undefined);
      if (view?.running) return signalContainer(view, "SIGKILL");
      if (view?.status === "exited") return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * One RUN: a container from the image so far, on `network` (`build
 * --network`: the default bridge unless the user says none or host, as
 * Docker's builder, so `RUN apk add …` reaches the registry it names).
 */
export async function runBuildStep(
  ctx: BuildEnvironment,
  image: ImageRecord,
  argv: string[],
  config: ImageConfig,
  interrupt: BuildInterrupt,
  network: BuildNetwork = "bridge",
): Promise<RunStepResult> {
  const { runContainer } = await import("../runtime/container.js");
  const { findContainer, removeContainer } = await import("../runtime/lifecycle.js");
  const { loadUserns } = await import("../runtime/idmap.js");
  const { containerPaths } = await import("../runtime/rootfs.js");
  const name = `build-${Math.random().toString(16).slice(2, 14)}`;
  interrupt.container = name;
  // Set first, checked second: a signal from now on finds the container by name.
  if (interrupt.cancelled) {
    const { BuildInterrupted } = await import("./build.js");
    throw new BuildInterrupted();
  }
  const code = await runContainer(
    {
      store: ctx.store,
      credentials: ctx.credentials,
      endpoints: ctx.endpoints,
      platform: ctx.platform(),
      reporter: { status() {}, layer() {} },
    },
    image.id,
    {
      name,
      command: argv,
      entrypoint: "",
      env: config.config?.Env ?? [],
      tty: false,
      interactive: false,
      readOnly: false,
      rm: false,
      detach: false,
      capAdd: [],
      capDrop: [],
      // No --security-opt: minibox's default seccomp profile and no_new_privs, as `run`.
      security: undefined,
      privileged: false,
      limits: {},
      userns: "private",
      network,
      init: false,
      labels: {},
      pull: "never",
      // RUN writes into the image, not into volumes: the image's VOLUMEs are
      // not mounted (as BuildKit does).
      mounts: [],
      imageVolumes: false,
      // Docker runs no health check during a build.
      healthcheck: { Test: ["NONE"] },
    },
  );
  interrupt.container = undefined;
  const id = (await readFile(ctx.store.layout.name(name), "utf8")).trim();
  const userns = await loadUserns(ctx.store.root);
  return {
    code,
    containerId: id,
    upperDir: containerPaths(ctx.store.root, id).upper,
    idShift: { uid: userns.uid.hostID, gid: userns.gid.hostID },
    remove: async () =>
      removeContainer(ctx.store.root, await findContainer(ctx.store.root, id), true),
  };
}

/** FROM an image not in the store: pull it, its progress shown by `reporter` (stopped when done). */
export async function pullForBuild(
  ctx: BuildEnvironment,
  name: string,
  reporter: PullReporter & { stop(): void },
): Promise<ImageRecord> {
  const { pullImage } = await import("../image/pull.js");
  const { parseReference } = await import("../image/reference.js");
  try {
    return (
      await pullImage(ctx.store, parseReference(name), {
        ...ctx.endpoints,
        platform: ctx.platform(),
        credentials: ctx.credentials,
        reporter,
      })
    ).record;
  } finally {
    reporter.stop();
  }
}
