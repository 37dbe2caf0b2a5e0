/**
 * `minibox-runc --version`. go-runc (containerd) parses the first line as
 * "runc version X" and the following "commit:" and "spec:" lines, so the
 * shape is runc's; the values are minibox's.
 */
import { OCI_VERSION } from "../spec.js";

export const RUNTIME_VERSION = "0.1.0";

export function versionText(): string {
  return [
    `runc version ${RUNTIME_VERSION}+minibox`,
    `commit: minibox-${RUNTIME_VERSION}`,
    `spec: ${OCI_VERSION}`,
  ].join("\n");
}
