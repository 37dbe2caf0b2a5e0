/**
 * minibox's default seccomp profile, default.json. Its own module so that
 * the JSON is loaded only when a profile is resolved: a run whose filter is
 * in the store's cache (cache.ts) never parses it.
 */
import defaultJson from "./default.json" with { type: "json" };
import type { SeccompProfile } from "./profile.js";

/** minibox's default profile (a fresh copy: callers may not change the shared one). */
export function defaultProfile(): SeccompProfile {
  return structuredClone(defaultJson as SeccompProfile);
}
