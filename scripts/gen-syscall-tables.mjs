// Generate src/runtime/seccomp/syscalls.json: syscall name → number for the
// architectures minibox's seccomp compiler knows (x86_64, i386, aarch64),
// from the kernel headers installed on the build host (Debian 12's
// linux-libc-dev). Run: node scripts/gen-syscall-tables.mjs
// Why generated rather than typed: a typo in a number silently allows or
// refuses the wrong syscall; the headers are the kernel's own table.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";

// aarch64 uses the generic table; these are the __ARCH_WANT_* switches that
// arch/arm64/include/uapi/asm/unistd.h sets before including it.
const AARCH64_WANTS = [
  "__ARCH_WANT_RENAMEAT",
  "__ARCH_WANT_NEW_STAT",
  "__ARCH_WANT_SET_GET_RLIMIT",
  "__ARCH_WANT_TIME32_SYSCALLS",
  "__ARCH_WANT_SYS_CLONE3",
  "__ARCH_WANT_MEMFD_SECRET",
];

const SOURCES = {
  x86_64: { header: "/usr/include/x86_64-linux-gnu/asm/unistd_64.h", defines: [] },
  i386: { header: "/usr/include/x86_64-linux-gnu/asm/unistd_32.h", defines: [] },
  aarch64: { header: "/usr/include/asm-generic/unistd.h", defines: AARCH64_WANTS },
};

// Syscalls newer than Debian 12's headers (Linux 6.1) that minibox's,
// Docker's or podman's profile names. Since Linux 5.x every architecture
// shares one numbering for new syscalls (424 and up), except where noted.
// Added by hand: cachestat 451, fchmodat2 452, map_shadow_stack 453 (x86_64
// and aarch64 only), futex_wake 454, futex_wait 455, futex_requeue 456,
// statmount 457, listmount 458, lsm_get_self_attr 459, lsm_set_self_attr 460,
// lsm_list_modules 461, mseal 462, setxattrat 463, getxattrat 464,
// listxattrat 465, removexattrat 466; uretprobe 335 (x86_64 only). Newer
// syscalls no profile names (open_tree_attr, file_getattr…) stay unknown:
// the default action (ENOSYS) answers them, as libseccomp would.
const SHARED_NEW = {
  cachestat: 451,
  fchmodat2: 452,
  futex_wake: 454,
  futex_wait: 455,
  futex_requeue: 456,
  statmount: 457,
  listmount: 458,
  lsm_get_self_attr: 459,
  lsm_set_self_attr: 460,
  lsm_list_modules: 461,
  mseal: 462,
  setxattrat: 463,
  getxattrat: 464,
  listxattrat: 465,
  removexattrat: 466,
};
const ADDED = {
  x86_64: { ...SHARED_NEW, map_shadow_stack: 453, uretprobe: 335 },
  i386: { ...SHARED_NEW },
  aarch64: { ...SHARED_NEW, map_shadow_stack: 453 },
};

/** Every `#define __NR_x value` the preprocessor ends up with, values resolved. */
function table(header, defines) {
  const args = ["-dM", ...defines.map((d) => `-D${d}`), header];
  const macros = new Map();
  for (const line of execFileSync("cpp", args, { encoding: "utf8" }).split("\n")) {
    const m = /^#define (\w+) (.+)$/.exec(line.trim());
    if (m) macros.set(m[1], m[2].trim());
  }
  const resolve = (v, depth = 0) => {
    if (/^\d+$/.test(v)) return Number(v);
    const inner = /^\((.*)\)$/.exec(v);
    if (inner) return resolve(inner[1], depth + 1);
    if (macros.has(v) && depth < 8) return resolve(macros.get(v), depth + 1);
    return undefined;
  };
  const out = {};
  for (const [name, value] of macros) {
    if (!name.startsWith("__NR_") || name.startsWith("__NR3264_")) continue;
    const nr = resolve(value);
    // Markers of the table's layout, not syscalls.
    if (nr === undefined || name === "__NR_syscalls" || name === "__NR_arch_specific_syscall")
      continue;
    out[name.slice("__NR_".length)] = nr;
  }
  return out;
}

const result = {};
for (const [arch, { header, defines }] of Object.entries(SOURCES)) {
  const merged = { ...table(header, defines), ...ADDED[arch] };
  result[arch] = Object.fromEntries(Object.entries(merged).sort((a, b) => a[1] - b[1]));
}
writeFileSync(
  new URL("../src/runtime/seccomp/syscalls.json", import.meta.url),
  `${JSON.stringify(result, null, 2)}\n`,
);
