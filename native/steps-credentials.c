/*
 * Steps that drop privilege, in the child, in the plan's order: groups,
 * bounding set (needs CAP_SETPCAP, so before the uid changes), uid/gid,
 * capabilities, no_new_privs; and the resource limits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "executor.h"

/* As many groups as the plan lists: past NGROUPS_MAX (65536) the kernel's
 * EINVAL from setgroups says so, nothing is cut silently. */
int step_groups(struct executor *ex, const struct step *st)
{
	size_t n = (size_t)st->nfields - 1;
	gid_t *gids = malloc((n ? n : 1) * sizeof(*gids));
	if (!gids)
		return fail(ex, st, "malloc", "groups");
	for (size_t i = 0; i < n; i++)
		gids[i] = (gid_t)num(arg(st, (int)i + 1));
	int rc = setgroups(n, gids);
	free(gids);
	return rc < 0 ? fail(ex, st, "setgroups", NULL) : 0;
}

int step_user(struct executor *ex, const struct step *st)
{
	uid_t uid = (uid_t)num(arg(st, 1));
	gid_t gid = (gid_t)num(arg(st, 2));
	if (setresgid(gid, gid, gid) < 0)
		return fail(ex, st, "setresgid", arg(st, 2));
	if (setresuid(uid, uid, uid) < 0)
		return fail(ex, st, "setresuid", arg(st, 1));
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* credential changes clear it */
	return 0;
}

/* Drop every capability not in the bounding set (hex mask): the ceiling for
 * this process and everything it executes. */
int step_bounding(struct executor *ex, const struct step *st)
{
	uint64_t bounding = strtoull(arg(st, 1), NULL, 16);
	for (int cap = 0; cap <= 63; cap++) {
		if (bounding & (1ULL << cap))
			continue;
		/* EINVAL: this kernel does not know the capability; nothing to drop. */
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return fail(ex, st, "prctl(PR_CAPBSET_DROP)", NULL);
	}
	return 0;
}

/* Set the effective, permitted and inheritable sets (hex masks); clear ambient. */
int step_caps(struct executor *ex, const struct step *st)
{
	uint64_t effective = strtoull(arg(st, 1), NULL, 16);
	uint64_t permitted = strtoull(arg(st, 2), NULL, 16);
	uint64_t inheritable = strtoull(arg(st, 3), NULL, 16);
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2] = {
		{ (uint32_t)effective, (uint32_t)permitted, (uint32_t)inheritable },
		{ (uint32_t)(effective >> 32), (uint32_t)(permitted >> 32), (uint32_t)(inheritable >> 32) },
	};
	if (syscall(SYS_capset, &hdr, data) < 0)
		return fail(ex, st, "capset", NULL);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return fail(ex, st, "prctl(PR_CAP_AMBIENT)", NULL);
	return 0;
}

int step_no_new_privs(struct executor *ex, const struct step *st)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(ex, st, "prctl(PR_SET_NO_NEW_PRIVS)", NULL);
	return 0;
}

int step_rlimit(struct executor *ex, const struct step *st)
{
	struct rlimit rl = { num(arg(st, 2)), num(arg(st, 3)) };
	if (setrlimit((int)num(arg(st, 1)), &rl) < 0)
		return fail(ex, st, "setrlimit", arg(st, 1));
	return 0;
}
