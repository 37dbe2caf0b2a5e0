/**
 * Container events as Docker writes them: the Actor is the container's full
 * ID, its Attributes its labels, `image` (as the user named it) and `name`,
 * plus what the action adds (die: exitCode and execDuration; kill: signal;
 * rename: oldName).
 */
import { readFileSync } from "node:fs";
import { constants } from "node:os";
import { containerPaths } from "../layout.js";
import type { ContainerState } from "../runtime/state.js";
import { type EventActor, recordEvent } from "./journal.js";

type Container = Pick<ContainerState, "id" | "name" | "imageRef">;

/**
 * The actor, read now: the labels are in the container's config.json, which
 * `destroy` must read before the directory goes.
 */
export function containerActor(
  root: string,
  c: Container,
  extra: Record<string, string> = {},
): EventActor {
  return actorOf(c, annotationsOf(root, c.id), extra);
}

/** The actor from the spec's annotations (the container's labels but minibox's own, minibox.*). */
export function actorOf(
  c: Container,
  annotations: Record<string, string>,
  extra: Record<string, string> = {},
): EventActor {
  const labels = Object.fromEntries(
    Object.entries(annotations).filter(([k]) => !k.startsWith("minibox.")),
  );
  return { ID: c.id, Attributes: { ...labels, image: c.imageRef, name: c.name, ...extra } };
}

function annotationsOf(root: string, id: string): Record<string, string> {
  try {
    const spec = JSON.parse(readFileSync(containerPaths(root, id).config, "utf8")) as {
      annotations?: Record<string, string>;
    };
    return spec.annotations ?? {};
  } catch {
    return {}; // not written yet (create) or already gone
  }
}

export async function recordContainerEvent(
  root: string,
  action: string,
  c: Container,
  extra: Record<string, string> = {},
): Promise<void> {
  await recordEvent(root, "container", action, containerActor(root, c, extra));
}

/** `die`: the exit code, and how long it ran in seconds (Docker's execDuration). */
export async function recordDie(
  root: string,
  c: Container & Pick<ContainerState, "exitCode" | "startedAt" | "finishedAt">,
): Promise<void> {
  const extra: Record<string, string> = { exitCode: String(c.exitCode ?? 0) };
  const ran = Date.parse(c.finishedAt ?? "") - Date.parse(c.startedAt ?? "");
  if (!Number.isNaN(ran)) extra.execDuration = String(Math.max(0, Math.floor(ran / 1000)));
  await recordContainerEvent(root, "die", c, extra);
}

/** `kill`: Docker names the signal by number ("signal=15"). */
export async function recordKill(
  root: string,
  c: Container,
  signal: NodeJS.Signals | number,
): Promise<void> {
  const number = typeof signal === "number" ? signal : constants.signals[signal];
  await recordContainerEvent(root, "kill", c, { signal: String(number) });
}
