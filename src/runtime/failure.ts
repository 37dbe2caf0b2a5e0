/**
 * Why a container's program did not start, in Docker's words and with
 * Docker's exit statuses: 127 not found, 126 cannot execute, and for any
 * other failed step 125 (`run`: minibox's own failure) or 126 (`exec`).
 */
import { type ExecutorResult, errnoText } from "./executor.js";

type Failure = ExecutorResult["failure"];
const ENOENT = 2;

function execveFailure(errno: number, program: string | undefined) {
  if (errno === ENOENT) {
    return {
      code: 127,
      message: program?.includes("/")
        ? `exec: "${program}": no such file or directory`
        : `exec: "${program}": executable file not found in $PATH`,
    };
  }
  return { code: 126, message: `exec: "${program}": ${errnoText(errno).toLowerCase()}` };
}

const EADDRINUSE = 98;

/**
 * A published port the executor could not bind: in use by another program
 * (minibox's own containers are caught earlier, with the same words), or
 * refused (an address this host does not have).
 */
function holdPortFailure(errno: number, where: string) {
  const why = errno === EADDRINUSE ? "port is already allocated" : errnoText(errno).toLowerCase();
  return { code: 125 as const, message: `Bind for ${where} failed: ${why}` };
}

const EPERM = 1;
const EINVAL = 22;
const ENOSYS = 38;

/**
 * A --ulimit the kernel refused: raising a hard limit needs CAP_SYS_RESOURCE
 * in the host's user namespace, and nofile never goes above fs.nr_open.
 */
function rlimitFailure(errno: number, what: string, code: 125 | 126) {
  const why =
    errno === EPERM
      ? " (a hard limit above minibox's own needs --userns=host; nofile can never exceed /proc/sys/fs/nr_open)"
      : "";
  return { code, message: `${what}: setrlimit: ${errnoText(errno)}${why}` };
}

export function explainFailure(
  f: Failure,
  program: string | undefined,
  stepFailureCode: 125 | 126,
): { code: number; message: string } {
  if (!f) return { code: stepFailureCode, message: "the container did not start" };
  if (f.call === "execve") return execveFailure(f.errno, program);
  const code = stepFailureCode;
  if (f.call === "executor") return { code, message: `the executor died (${f.detail})` };
  const what = f.step?.describe ?? f.call;
  if (f.call === "mount_setattr" && f.step?.op === "idmap-mount") {
    // e.g. a bind mount from NFS or FUSE, which cannot be idmapped.
    return {
      code,
      message: `${what}: the filesystem of ${f.detail} does not support idmapped mounts (${errnoText(f.errno)}); use --userns=host for this container`,
    };
  }
  if (f.step?.op === "hold-port" && f.call === "bind") return holdPortFailure(f.errno, f.detail);
  // The executor's network steps name the request and the device in the detail.
  if (f.call === "netlink") {
    return { code, message: `${what}: netlink ${f.detail}: ${errnoText(f.errno)}` };
  }
  // The root step's check: no path under the rootfs can be resolved safely.
  if (f.call === "openat2" && f.errno === ENOSYS) return { code, message: `${what}: ${f.detail}` };
  if (f.call === "parse") return { code, message: `${what}: invalid ${f.detail}` };
  if (f.call === "setrlimit") return rlimitFailure(f.errno, what, code);
  if (f.call === "setns" && f.errno === EINVAL && f.step?.op === "join-ns") {
    return { code, message: `${f.step.path} is not a ${f.step.type} namespace` };
  }
  // The executor's chdir landed outside the container's root (CVE-2024-21626's -w /proc/self/fd/N).
  if (f.call === "getcwd") {
    return { code, message: `${what}: the directory is outside the container` };
  }
  return { code, message: `${what}: ${f.call}: ${errnoText(f.errno)}` };
}
