/*
 * warm-cgroup: take the cost of the kernel's first cgroup migration off
 * the path to the container's execve.
 *
 * Moving a process between cgroups takes cgroup_threadgroup_rwsem, a per-CPU
 * rwsem, for writing; after a quiet spell its writer first waits for an RCU
 * grace period (rcu_sync_enter → synchronize_rcu), and that lock is shared
 * by every hierarchy. On this project's 2-vCPU VM the init's first join
 * (cpuset on v1) took 6–20 ms, the joins after it ~0.05 ms each: the cost is
 * the first migration's, whichever hierarchy it is in.
 *
 * So the first setup step forks a throwaway child that moves itself into one
 * of the container's cgroups and exits. It waits for that grace period while
 * we go on with the root filesystem (~5–8 ms of mounts) and the clone; the
 * init's join then finds the lock's fast path still open (the rwsem stays
 * in writer mode for a grace period after its last writer) or waits only for
 * what is left of the grace period. The child's move changes nothing else:
 * reap_cgroup_warmer waits for it (exited and released, so it is out of the
 * cgroup and no longer counted in pids.current) before the init joins.
 *
 * An optimisation only: if the fork or the child's write fails, the join
 * simply pays the grace period itself, as it did before.
 */
#define _GNU_SOURCE
#include <sys/wait.h>
#include <unistd.h>

#include "executor.h"

void warm_cgroup(struct executor *ex, const char *procs_file)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(write_string(procs_file, "0") == 0 ? 0 : 1);
	if (pid > 0)
		ex->cgroup_warmer = pid;
}

/* "warm-cgroup PROCS-FILE": a no-op when `--warm-cgroup PROCS-FILE` on our
 * command line started the warm-up already, before the plan was read. minibox
 * spawns us with it as soon as the cgroups exist and builds the plan
 * meanwhile: the wait starts ~10 ms earlier and the init's join, which waited
 * for what was left of it (10–12 ms under load), finds it over. */
int step_warm_cgroup(struct executor *ex, const struct step *st)
{
	if (!ex->cgroup_warmer)
		warm_cgroup(ex, arg(st, 1));
	return 0;
}

void reap_cgroup_warmer(struct executor *ex)
{
	if (ex->cgroup_warmer > 0)
		waitpid(ex->cgroup_warmer, NULL, 0);
	ex->cgroup_warmer = 0;
}
