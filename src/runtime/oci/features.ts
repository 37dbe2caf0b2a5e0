/**
 * What `minibox-runc features` reports (the OCI runtime spec's features.md):
 * each list is read from the table the code itself uses, so the report cannot
 * claim more than the planner, the executor or the seccomp compiler does.
 */

import { CAPABILITIES } from "../plan/capabilities.js";
import { OPTION_FLAGS, PROPAGATION_FLAGS } from "../plan/mount-options.js";
import { NAMESPACE_FLAGS } from "../plan/namespace-steps.js";
import { ARCHES } from "../seccomp/tables.js";
import { ACTIONS, OPS } from "../seccomp/validate.js";
import { OCI_VERSION } from "../spec.js";
import { HOOK_KINDS } from "./bundle-spec.js";
import { RUNTIME_VERSION } from "./version.js";

export interface Features {
  ociVersionMin: string;
  ociVersionMax: string;
  hooks: string[];
  mountOptions: string[];
  linux: {
    namespaces: string[];
    capabilities: string[];
    cgroup: { v1: boolean; v2: boolean; systemd: boolean; systemdUser: boolean };
    seccomp: { enabled: boolean; actions: string[]; operators: string[]; archs: string[] };
    apparmor: { enabled: boolean };
    selinux: { enabled: boolean };
  };
  annotations: Record<string, string>;
}

const sorted = (names: Iterable<string>): string[] => [...names].sort();

export function runtimeFeatures(): Features {
  return {
    ociVersionMin: "1.0.0",
    ociVersionMax: OCI_VERSION,
    // The hooks create, start and delete run (lifecycle.ts), from the one list bundle-spec.ts checks.
    hooks: [...HOOK_KINDS],
    // The options that become mount(2) flags, and "rw" (the default, no flag).
    // Propagation options (shared, rslave, …) are accepted but not applied yet,
    // so they are not claimed.
    mountOptions: sorted([
      ...Object.keys(OPTION_FLAGS),
      ...Object.keys(PROPAGATION_FLAGS),
      "rw",
      "private",
      "rprivate",
    ]),
    linux: {
      // The clone's namespaces, and the cgroup namespace unshared after it.
      namespaces: sorted([...Object.keys(NAMESPACE_FLAGS), "cgroup"]),
      capabilities: Object.entries(CAPABILITIES)
        .sort(([, a], [, b]) => a - b)
        .map(([name]) => name),
      // minibox writes cgroupfs itself (v1 or v2); it has no systemd driver.
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false },
      seccomp: {
        enabled: true,
        actions: sorted(ACTIONS),
        operators: sorted(OPS),
        // The architectures the BPF compiler has syscall tables for.
        archs: sorted(Object.keys(ARCHES)),
      },
      apparmor: { enabled: false },
      selinux: { enabled: false },
    },
    annotations: { "org.minibox.version": RUNTIME_VERSION },
  };
}
