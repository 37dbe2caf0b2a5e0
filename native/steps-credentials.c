/*
 * Steps that drop privilege, in the child, in the plan's order: groups,
 * bounding set (needs CAP_SETPCAP, so before the uid changes), uid/gid,
 * capabilities, no_new_privs, the seccomp filter; and the resource limits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "executor.h"

/*
 * CVE-2019-5736: a process of ours inside the container (the child between
 * the clone or setns and its execve, the --init that stays PID 1) shows the
 * container its /proc/PID/exe, a link to this binary on the host; opened
 * through it, the host file could be rewritten. The kernel lets only a
 * process that may ptrace us open that link, and a non-dumpable process may
 * be ptraced only with CAP_SYS_PTRACE in the user namespace of its memory
 * (the host's: we were exec'd there), which a container does not hold.
 * execve of the container's program makes it dumpable again, as it should
 * be. Every credential change (setresuid, setns into a user namespace,
 * capset, unshare) resets the flag to fs.suid_dumpable, which a host may set
 * to 1: so it is set again after each of them. Nothing else calls it: with
 * no_new_privs the filter comes after the last of them, so a profile that
 * refuses prctl is never asked; without, the profile must allow prctl anyway
 * (docs/internals.md, "Dropping privileges").
 */
void stay_undumpable(void)
{
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

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
	/* Keep the permitted set across the uid change, so the caps step can
	 * give a non-root user the capabilities its spec lists (it sets all
	 * three sets right after, so nothing more is kept than asked for). */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return fail(ex, st, "prctl(PR_SET_KEEPCAPS)", NULL);
	if (setresuid(uid, uid, uid) < 0)
		return fail(ex, st, "setresuid", arg(st, 1));
	prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	if (!ex->let_go)
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* credential changes clear it (see run_child) */
	stay_undumpable();                        /* and may make us dumpable */
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

/* Set the effective, permitted and inheritable sets (hex masks); the
 * ambient set is cleared, then given the optional fourth mask. */
int step_caps(struct executor *ex, const struct step *st)
{
	uint64_t ambient = st->nfields > 4 ? strtoull(arg(st, 4), NULL, 16) : 0;
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
	stay_undumpable();
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return fail(ex, st, "prctl(PR_CAP_AMBIENT)", NULL);
	/* Best effort, as runc: a capability that is not also inheritable cannot
	 * be ambient (EPERM), and `runc spec` itself lists ambient ones with an
	 * empty inheritable set. */
	for (int cap = 0; cap <= 63; cap++)
		if (ambient & (1ULL << cap))
			prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
	return 0;
}

int step_no_new_privs(struct executor *ex, const struct step *st)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(ex, st, "prctl(PR_SET_NO_NEW_PRIVS)", NULL);
	return 0;
}

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Load the seccomp filter: one field, the struct sock_filter[] in lowercase
 * hex (8 bytes an instruction, little-endian, as minibox compiled it). TSYNC:
 * every thread gets it (the executor has one, but the flag makes it certain).
 * The kernel wants no_new_privs or CAP_SYS_ADMIN; the plan orders it so. */
int step_seccomp(struct executor *ex, const struct step *st)
{
	const char *hex = arg(st, 1);
	size_t len = strlen(hex);
	if (len == 0 || len % (2 * sizeof(struct sock_filter)) != 0) {
		errno = EINVAL;
		return fail(ex, st, "seccomp", "program length");
	}
	unsigned char *bytes = malloc(len / 2);
	if (!bytes)
		return fail(ex, st, "malloc", "seccomp");
	for (size_t i = 0; i < len / 2; i++) {
		int hi = hex_nibble(hex[2 * i]), lo = hex_nibble(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(bytes);
			errno = EINVAL;
			return fail(ex, st, "seccomp", "program is not hex");
		}
		bytes[i] = (unsigned char)(hi << 4 | lo);
	}
	struct sock_fprog prog = {
		.len = (unsigned short)(len / 2 / sizeof(struct sock_filter)),
		.filter = (struct sock_filter *)bytes,
	};
	long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
	free(bytes);
	return rc != 0 ? fail(ex, st, "seccomp", NULL) : 0;
}

int step_rlimit(struct executor *ex, const struct step *st)
{
	struct rlimit rl = { num(arg(st, 2)), num(arg(st, 3)) };
	if (setrlimit((int)num(arg(st, 1)), &rl) < 0)
		return fail(ex, st, "setrlimit", arg(st, 1));
	return 0;
}
