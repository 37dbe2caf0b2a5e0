/*
 * The op table: every op the plan may name, how many fields it takes after
 * its name, and the handler that performs it. The whole plan is checked
 * against this table before any step runs, so a handler may read its fields
 * without counting them. A new op is one row here and one handler.
 */
#define _GNU_SOURCE
#include <stdio.h>

#include "executor.h"

static const struct op ops[] = {
	/* [setup]: the root filesystem, assembled by real root in a private mount namespace */
	{ "warm-cgroup", 1, 1, 1, step_warm_cgroup },
	{ "hold-port", 3, 3, 1, step_hold_port },
	{ "mountns", 0, 0, 1, step_mountns },
	{ "root", 1, 1, 1, step_root },
	{ "idmap-userns", 2, 2, 1, step_idmap_userns },
	{ "idmap-mount", 2, 2, 1, step_idmap_mount },
	{ "mount", 5, 5, 1, step_mount },
	{ "mkdir", 2, 4, 2, step_mkdir },
	{ "touch", 2, 4, 2, step_touch },
	{ "mknod", 4, 4, 1, step_mknod },
	{ "chown", 3, 3, 1, step_chown },
	{ "symlink", 2, 2, 1, step_symlink },
	{ "remount-ro", 1, 1, 1, step_remount_ro },
	{ "pty", 0, 0, 1, step_pty },
	{ "log", 4, 4, 1, step_log },
	{ "exit-file", 1, 1, 1, step_exit_file },
	{ "on-exit", 1, VARIADIC, 1, step_on_exit },
	{ "health", 10, 10, 1, step_health },
	{ "setns", 1, VARIADIC, 1, step_setns },
	{ "exec-fifo", 1, 1, 1, step_exec_fifo },
	{ "console-socket", 1, 1, 1, step_console_socket },
	{ "join-ns", 2, 2, 1, step_join_ns },
	{ "base", 1, 1, 1, step_base },
	/* Ends [setup]; main() performs it, so it has no handler. */
	{ "clone", 1, 1, 1, NULL },
	/* [parent]: after the clone, before the child is released */
	{ "write", 2, 2, 1, step_write },
	{ "report-pid", 0, 0, 1, step_report_pid },
	{ "wait-go", 0, 0, 1, step_wait_go },
	{ "veth", 5, 5, 1, step_veth },
	/* [child]: inside the new namespaces, up to execve */
	{ "unshare", 1, 1, 1, step_unshare },
	{ "user", 2, 2, 1, step_user },
	{ "stdin-null", 0, 0, 1, step_stdin_null },
	{ "mask", 2, 2, 1, step_mask },
	{ "pivot_root", 1, 1, 1, step_pivot_root },
	{ "console", 0, 0, 1, step_console },
	{ "sethostname", 1, 1, 1, step_sethostname },
	{ "setdomainname", 1, 1, 1, step_setdomainname },
	{ "ifup", 1, 1, 1, step_ifup },
	{ "netif", 3, 3, 1, step_netif },
	{ "route-default", 1, 2, 1, step_route_default },
	{ "chdir", 1, 1, 1, step_chdir },
	{ "rlimit", 3, 3, 1, step_rlimit },
	{ "groups", 0, VARIADIC, 1, step_groups },
	{ "bounding", 1, 1, 1, step_bounding },
	{ "caps", 3, 4, 1, step_caps },
	{ "no-new-privs", 0, 0, 1, step_no_new_privs },
	{ "seccomp", 1, 1, 1, step_seccomp },
	{ "closefds", 0, 0, 1, step_closefds },
	{ "env", 1, 1, 1, step_env },
	{ "init", 0, 0, 1, step_init },
	{ "wait-start", 0, 0, 1, step_wait_start },
	{ "pass-fds", 1, 1, 1, step_pass_fds },
	{ "exec", 1, VARIADIC, 1, step_exec },
};

const struct op *find_op(const char *name)
{
	for (size_t i = 0; i < sizeof(ops) / sizeof(*ops); i++)
		if (!strcmp(ops[i].name, name))
			return &ops[i];
	return NULL;
}

void describe_arity(const struct op *op, char *out, size_t size)
{
	const char *unit = op->min_args == 1 ? "field" : "fields";
	if (op->max_args == VARIADIC)
		snprintf(out, size, "at least %d %s", op->min_args, unit);
	else if (op->max_args == op->min_args)
		snprintf(out, size, "%d %s", op->min_args, unit);
	else if (op->max_args - op->min_args == op->stride)
		snprintf(out, size, "%d or %d fields", op->min_args, op->max_args);
	else
		snprintf(out, size, "%d to %d fields", op->min_args, op->max_args);
}
