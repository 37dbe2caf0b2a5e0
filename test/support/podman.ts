// podman (and buildah, skopeo) isolated from the host's configuration: config
// files of their own (CONTAINERS_CONF and friends), a private store, cgroupfs,
// no event log. Shared by the benches (bench/common.ts re-exports these) and
// the integration tests that make podman drive minibox-runc.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
export interface ContainersConfig {
  /** Where the generated config files go. */
  dir: string;
  /** TMPDIR and c/image's big-file temp dir. */
  tmp: string;
  /** Defaults only: every command passes its own storage options (podmanArgs). */
  driver: string;
  graphroot: string;
  runroot: string;
  /** Podman's network backend and where it keeps network definitions (podman's defaults when absent). */
  network?: { backend: string; configDir: string };
  /** OCI runtimes by name (`[engine.runtimes]`: `podman --runtime NAME` finds them). */
  runtimes?: Record<string, string>;
}

/**
 * Config files that keep podman, buildah and skopeo away from the host's
 * registries, storage and auth: an empty search list, cgroupfs and no event
 * log (there is no systemd here), big-file temp dir inside our work dir.
 * Returns the environment that points to them.
 */
export function writeContainersConfig(c: ContainersConfig): NodeJS.ProcessEnv {
  mkdirSync(c.dir, { recursive: true });
  mkdirSync(c.tmp, { recursive: true });
  const q = JSON.stringify;
  writeFileSync(path.join(c.dir, "registries.conf"), "unqualified-search-registries = []\n");
  writeFileSync(
    path.join(c.dir, "containers.conf"),
    [
      "[engine]",
      'cgroup_manager = "cgroupfs"',
      'events_logger = "none"',
      `image_copy_tmp_dir = ${q(c.tmp)}`,
      ...(c.runtimes
        ? [
            "[engine.runtimes]",
            ...Object.entries(c.runtimes).map(([name, binary]) => `${name} = [${q(binary)}]`),
          ]
        : []),
      ...(c.network
        ? [
            "[network]",
            `network_backend = ${q(c.network.backend)}`,
            `network_config_dir = ${q(c.network.configDir)}`,
          ]
        : []),
      "",
    ].join("\n"),
  );
  writeFileSync(
    path.join(c.dir, "storage.conf"),
    [
      "[storage]",
      `driver = ${q(c.driver)}`,
      `graphroot = ${q(c.graphroot)}`,
      `runroot = ${q(c.runroot)}`,
      "",
    ].join("\n"),
  );
  writeFileSync(path.join(c.dir, "auth.json"), '{"auths":{}}\n');
  return containersEnv(c);
}

export function containersEnv(c: ContainersConfig): NodeJS.ProcessEnv {
  return {
    ...process.env,
    CONTAINERS_CONF: path.join(c.dir, "containers.conf"),
    CONTAINERS_REGISTRIES_CONF: path.join(c.dir, "registries.conf"),
    CONTAINERS_STORAGE_CONF: path.join(c.dir, "storage.conf"),
    REGISTRY_AUTH_FILE: path.join(c.dir, "auth.json"),
    TMPDIR: c.tmp,
  };
}

/** One podman store: its graph root, runroot (≤ 50 characters for overlay), libpod tmpdir. */
export interface PodmanStore {
  root: string;
  runroot: string;
  tmpdir: string;
  driver: string;
}

export function podmanArgs(s: PodmanStore, ...command: string[]): string[] {
  return [
    "--root",
    s.root,
    "--runroot",
    s.runroot,
    "--tmpdir",
    s.tmpdir,
    "--storage-driver",
    s.driver,
    "--cgroup-manager",
    "cgroupfs",
    "--events-backend",
    "none",
    ...command,
  ];
}

/**
 * `podman run` options every bench gives its podman containers: podman's
 * default ulimits are above what this machine lets runc set, and its
 * containers go under a cgroup parent of the bench's own (removed at the end).
 */
export function podmanRunLimits(cgroupParent: string): string[] {
  return [
    "--ulimit",
    "nofile=20000:20000",
    "--ulimit",
    "nproc=32768:32768",
    "--cgroup-parent",
    cgroupParent,
  ];
}

/**
 * The podman run line the benches and the podman integration tests share,
 * as podman's arguments after the store's (podmanArgs): `[--runtime R] run
 * --network none` (nothing of the host's networking), the run limits above
 * under `cgroupParent`, then `options`, the image and the command.
 */
export function podmanRun(o: {
  /** Left out when the caller names the runtime itself. */
  runtime?: string;
  cgroupParent: string;
  options?: string[];
  image: string;
  command: string[];
}): string[] {
  return [
    ...(o.runtime ? ["--runtime", o.runtime] : []),
    "run",
    "--network",
    "none",
    ...podmanRunLimits(o.cgroupParent),
    ...(o.options ?? []),
    o.image,
    ...o.command,
  ];
}

/**
 * A bench's one podman store, with the isolated configuration: graph root
 * `podman/root` and libpod tmpdir `podman/tmp` under `dir`, runroot `runroot`
 * (short on purpose: the overlay driver refuses runroots over 50
 * characters), config files in `config`; overlay driver.
 */
export function podmanStore(
  dir: string,
  runroot: string,
  config: string,
  network?: ContainersConfig["network"],
  runtimes?: ContainersConfig["runtimes"],
) {
  const c: ContainersConfig = {
    dir: config,
    tmp: path.join(dir, "tmp"),
    driver: "overlay",
    graphroot: path.join(dir, "root"),
    runroot,
    network,
    runtimes,
  };
  const store: PodmanStore = { root: c.graphroot, runroot, tmpdir: c.tmp, driver: c.driver };
  return {
    env: () => containersEnv(c),
    writeConfig: () => writeContainersConfig(c),
    args: (...command: string[]) => podmanArgs(store, ...command),
  };
}

/**
 * Writes `file`, an OCI runtime that logs each call it gets (the caller:
 * podman or conmon; argv; cwd; the open file descriptors; the names of the
 * variables in its environment) to `log`, then execs `runtime` with the same
 * arguments: the calls podman and conmon make, as a checklist. Returns `file`.
 */
export function runtimeTracer(file: string, runtime: string, log: string): string {
  const q = JSON.stringify;
  // Python, not sh: a shell's redirections would show among the fds listed.
  // The environment's names are those the caller passed (os.environ is a
  // copy, and execv passes it on).
  writeFileSync(
    file,
    [
      // Python's locale coercion would add LC_CTYPE to the environment.
      "#!/usr/bin/env -S PYTHONCOERCECLOCALE=0 /usr/bin/python3",
      "import os, sys",
      "os.environ.pop('PYTHONCOERCECLOCALE')",
      "fds = sorted(int(fd) for fd in os.listdir('/proc/self/fd'))",
      "def link(fd):",
      "    try:",
      "        return os.readlink(f'/proc/self/fd/{fd}')",
      "    except OSError:",
      "        return None  # the directory listdir read, closed since",
      "me = os.path.realpath(sys.argv[0])  # python's hold on this script",
      "seen = [f'{fd}={link(fd)}' for fd in fds if link(fd) not in (None, me)]",
      "ppid = os.getppid()",
      "caller = open(f'/proc/{ppid}/comm').read().strip()",
      // Values only where they name an fd (conmon's _OCI_*PIPE, LISTEN_FDS).
      "fdvar = lambda k: k.startswith(('_OCI_', 'LISTEN_'))",
      "env = [f'{k}={os.environ[k]}' if fdvar(k) else k for k in sorted(os.environ)]",
      `with open(${q(log)}, 'a') as out:`,
      "    out.write(f'--- caller {caller} (pid {ppid})\\n')",
      "    out.write('argv: ' + ' '.join(sys.argv[1:]) + '\\n')",
      "    out.write('cwd: ' + os.getcwd() + '\\n')",
      "    out.write('fds: ' + ' '.join(seen) + '\\n')",
      "    out.write('env: ' + ' '.join(env) + '\\n')",
      `os.execv(${q(runtime)}, [${q(runtime)}] + sys.argv[1:])`,
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  return file;
}
