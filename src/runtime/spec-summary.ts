/**
 * The few fields of a container's spec that `ps` shows (command, labels,
 * whether it has a network namespace of its own), kept in state.json when
 * the spec is made. Reading them from config.json meant parsing ~23 kB of
 * JSON per container (the seccomp profile is most of it): with 100
 * containers, ~15 ms of every `ps`. A spec never changes after `run`, so
 * the copy cannot go stale; containers made before it existed fall back to
 * config.json.
 */
import { readSpec } from "./lifecycle.js";
import type { Spec } from "./spec.js";
import type { ContainerState } from "./state.js";

export interface SpecSummary {
  /** process.args: ps's COMMAND. */
  args: string[];
  /** The labels the user gave (labelsOf). */
  labels: Record<string, string>;
  /** A network namespace of its own (--network none, or a bridge), not the host's. */
  ownNetwork: boolean;
}

/** The labels the user gave: annotations minus minibox's own (minibox.*). */
export function labelsOf(annotations: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(annotations ?? {}).filter(([k]) => !k.startsWith("minibox.")),
  );
}

export function specSummary(spec: Spec): SpecSummary {
  return {
    args: spec.process.args,
    labels: labelsOf(spec.annotations),
    ownNetwork: spec.linux.namespaces?.some((n) => n.type === "network") ?? false,
  };
}

/** The summary in its state, else from its config.json; undefined when neither can be read. */
export async function summaryOf(
  root: string,
  state: Pick<ContainerState, "id" | "summary">,
): Promise<SpecSummary | undefined> {
  if (state.summary) return state.summary;
  const spec = await readSpec(root, state.id).catch(() => undefined);
  return spec && specSummary(spec);
}
