/** tmpfs sizes as Docker writes them into mount options (no imports: spec.ts uses it). */

/** A byte count as a tmpfs size: the largest unit that divides it (Docker's ConvertTmpfsOptions). */
export function tmpfsSize(bytes: number): string {
  for (const [suffix, unit] of [
    ["g", 1024 ** 3],
    ["m", 1024 ** 2],
    ["k", 1024],
  ] as const) {
    if (bytes % unit === 0) return `${bytes / unit}${suffix}`;
  }
  return String(bytes);
}

/** Docker's default /dev/shm: 64 MiB. */
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;
