/**
 * `wait --condition healthy` (minibox's, not Docker's; compose's
 * depends_on: service_healthy uses it): until the container's health check
 * passes. It fails as soon as the check reports unhealthy or the container
 * stops, so a caller never waits for what cannot happen.
 */
import { MiniboxError } from "../../errors.js";
import { containerPaths } from "../../layout.js";
import { findContainer } from "../lifecycle.js";
import { healthActive } from "./config.js";
import { readHealth } from "./probe.js";

export async function waitHealthy(root: string, idOrName: string): Promise<void> {
  const first = await findContainer(root, idOrName);
  const name = idOrName;
  if (!healthActive(first.healthcheck)) {
    throw new MiniboxError(
      `container ${name} has no health check`,
      "run it with --health-cmd, or from an image with a HEALTHCHECK",
    );
  }
  const paths = containerPaths(root, first.id);
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    const c = await findContainer(root, first.id).catch(() => undefined);
    if (!c?.running) {
      throw new MiniboxError(`container ${name} stopped before it was healthy`);
    }
    const health = await readHealth(paths, c.healthcheck, true);
    if (health?.Status === "healthy") return;
    if (health?.Status === "unhealthy") {
      const last = health.Log.at(-1);
      const why = last ? `: the last check exited ${last.ExitCode}` : "";
      throw new MiniboxError(`container ${name} is unhealthy${why}`);
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}
