/*
 * minibox-runc-fast: the cheap verbs of minibox-runc — state, start, kill,
 * delete — without starting node. containerd's shim and conmon call the
 * runtime several times per container; node's start-up alone (~80 ms here)
 * is ten times what runc takes for these. Each of them is a few syscalls on
 * what `create` wrote down for this purpose in <root>/<id>/:
 *
 *   fast        "pid N", "start T" (field 22 of /proc/N/stat: which process
 *               N was), "hooks 1" when start/delete have hooks to run,
 *               "cgroup DIR" per cgroup directory, "above DIR" per
 *               directory made above them (deepest first)
 *   state.tmpl  the `state` JSON, with @PID@ and @STATUS@ to fill in
 *
 * This program only ever serves the success path of a plain call. Anything
 * else — an unknown flag, --debug, a missing container, a status the verb
 * refuses, hooks to run, a failure halfway — is handed to the TypeScript
 * implementation (`node dist/minibox-runc.mjs ARGS`, exec'd with the same
 * arguments), which says what is wrong in runc's words. So the error
 * messages exist once, and this file stays small.
 *
 * usage (by ./minibox-runc): minibox-runc-fast dist/minibox-runc.mjs RUNTIME-ARGS…
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_DIRS 32

struct record {
	char dir[PATH_MAX];
	long pid;
	char start[32];
	bool hooks;
	char *cgroups[MAX_DIRS];
	int ncgroups;
	char *above[MAX_DIRS];
	int nabove;
};

static char **fallback_argv;

/* Not ours to answer: the TypeScript runtime does it, with runc's errors. */
static _Noreturn void fallback(void)
{
	execvp("node", fallback_argv);
	perror("minibox-runc: node");
	exit(1);
}

static void read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, size - 1);
	if (fd >= 0)
		close(fd);
	if (n < 0)
		fallback();
	buf[n] = '\0';
}

static void load_record(const char *root, const char *id, struct record *r)
{
	static char text[16384];
	char path[PATH_MAX + 8];
	/* runc's ID rule; anything else is node's to refuse. */
	if (!id[0] || strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.") != strlen(id) ||
	    !strcmp(id, ".") || !strcmp(id, ".."))
		fallback();
	if (snprintf(r->dir, sizeof(r->dir), "%s/%s", root, id) >= (int)sizeof(r->dir))
		fallback();
	snprintf(path, sizeof(path), "%s/fast", r->dir);
	read_file(path, text, sizeof(text));
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char *value = strchr(line, ' ');
		if (!value)
			fallback();
		*value++ = '\0';
		if (!strcmp(line, "pid"))
			r->pid = strtol(value, NULL, 10);
		else if (!strcmp(line, "start"))
			snprintf(r->start, sizeof(r->start), "%s", value);
		else if (!strcmp(line, "hooks"))
			r->hooks = !strcmp(value, "1");
		else if (!strcmp(line, "cgroup") && r->ncgroups < MAX_DIRS)
			r->cgroups[r->ncgroups++] = value;
		else if (!strcmp(line, "above") && r->nabove < MAX_DIRS)
			r->above[r->nabove++] = value;
	}
	if (r->pid <= 0)
		fallback();
}

/* The init is still that process (same start time) and not a zombie. */
static bool init_alive(const struct record *r)
{
	char path[64], stat[1024];
	snprintf(path, sizeof(path), "/proc/%ld/stat", r->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	if (n <= 0)
		return false;
	stat[n] = '\0';
	/* comm may hold spaces and ')': the fields after it start at the last ')'. */
	char *p = strrchr(stat, ')');
	if (!p || p[1] != ' ')
		return false;
	char state = p[2];
	p += 2;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p || state == 'Z' || state == 'X')
		return false;
	size_t len = strcspn(p, " ");
	return len == strlen(r->start) && !strncmp(p, r->start, len);
}

static bool fifo_exists(const struct record *r)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/exec.fifo", r->dir);
	return access(path, F_OK) == 0;
}

/*
 * The freezer's file of the container (v1 freezer.state, v2 cgroup.freeze),
 * opened with FLAGS, in the first of its cgroup directories that has one;
 * -1 when none has (a v1 cgroup made without the freezer).
 */
static int open_freezer(const struct record *r, int flags, bool *v1)
{
	char path[PATH_MAX + 32];
	for (int i = 0; i < r->ncgroups; i++) {
		snprintf(path, sizeof(path), "%s/freezer.state", r->cgroups[i]);
		int fd = open(path, flags | O_CLOEXEC);
		*v1 = fd >= 0;
		if (fd < 0) {
			snprintf(path, sizeof(path), "%s/cgroup.freeze", r->cgroups[i]);
			fd = open(path, flags | O_CLOEXEC);
		}
		if (fd >= 0)
			return fd;
	}
	return -1;
}

static bool frozen(const struct record *r)
{
	char value[32];
	bool v1;
	int fd = open_freezer(r, O_RDONLY, &v1);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, value, sizeof(value) - 1);
	close(fd);
	value[n > 0 ? n : 0] = '\0';
	return !strncmp(value, "FROZEN", 6) || value[0] == '1';
}

/*
 * Thaw a paused container before killing it, as runc does: a task frozen by
 * the v1 freezer takes no SIGKILL until thawed, so its cgroup would stay busy.
 * Best effort: if it fails, the cgroup stays busy and node's delete (the
 * fallback) thaws it and says what is wrong.
 */
static void thaw(const struct record *r)
{
	bool v1;
	int fd = open_freezer(r, O_WRONLY, &v1);
	if (fd < 0)
		return;
	const char *value = v1 ? "THAWED" : "0";
	ssize_t n = write(fd, value, strlen(value));
	(void)n;
	close(fd);
}

static const char *status_of(const struct record *r)
{
	if (!init_alive(r))
		return "stopped";
	if (fifo_exists(r))
		return "created";
	return frozen(r) ? "paused" : "running";
}

/* state.tmpl with its two blanks filled: what `state` prints. */
static void state_verb(const struct record *r)
{
	static char tmpl[65536];
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/state.tmpl", r->dir);
	read_file(path, tmpl, sizeof(tmpl));
	const char *status = status_of(r);
	char *pid = strstr(tmpl, "@PID@");
	char *st = strstr(tmpl, "@STATUS@");
	if (!pid || !st || st < pid)
		fallback();
	*pid = *st = '\0';
	printf("%s%ld%s%s%s", tmpl, strcmp(status, "stopped") ? r->pid : 0L, pid + 5, status, st + 8);
}

static void start_verb(const struct record *r)
{
	char path[PATH_MAX + 16];
	if (r->hooks || !init_alive(r))
		fallback();
	snprintf(path, sizeof(path), "%s/exec.fifo", r->dir);
	/* The init holds the FIFO open: the open cannot block, and fails if it is gone. */
	int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		fallback();
	ssize_t n = write(fd, "0", 1);
	close(fd);
	if (n != 1)
		fallback();
	unlink(path);
}

struct signame {
	const char *name;
	int sig;
};

static const struct signame SIGNALS[] = {
	{ "HUP", SIGHUP },   { "INT", SIGINT },   { "QUIT", SIGQUIT }, { "KILL", SIGKILL },  { "USR1", SIGUSR1 },
	{ "USR2", SIGUSR2 }, { "TERM", SIGTERM }, { "STOP", SIGSTOP }, { "CONT", SIGCONT }, { "WINCH", SIGWINCH },
};

/* "TERM", "SIGTERM", "term" or "15"; anything else is node's to judge. */
static int signal_of(const char *text)
{
	char *end;
	long n = strtol(text, &end, 10);
	if (*text && !*end)
		return n >= 1 && n <= 64 ? (int)n : (fallback(), 0);
	if (!strncasecmp(text, "SIG", 3))
		text += 3;
	for (size_t i = 0; i < sizeof(SIGNALS) / sizeof(*SIGNALS); i++)
		if (!strcasecmp(text, SIGNALS[i].name))
			return SIGNALS[i].sig;
	fallback();
}

/* Every PID in a cgroup directory; a callback per PID. */
static void each_pid(const char *dir, void (*fn)(long pid, int sig), int sig)
{
	char path[PATH_MAX + 16], buf[65536];
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		fn(strtol(line, NULL, 10), sig);
}

static void send(long pid, int sig)
{
	kill((pid_t)pid, sig);
}

static void kill_verb(const struct record *r, bool all, const char *sigtext)
{
	int sig = signal_of(sigtext ? sigtext : "TERM");
	if (!init_alive(r))
		fallback(); /* "container not running" */
	if (all && r->ncgroups > 0)
		each_pid(r->cgroups[0], send, sig);
	else if (kill((pid_t)r->pid, sig) < 0 && errno != ESRCH)
		fallback();
}

static void sleep_ms(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };
	nanosleep(&ts, NULL);
}

/* Kill what is left in the cgroup and remove it: an rmdir succeeds once it is empty. */
static bool remove_cgroup(const char *dir)
{
	for (int tries = 0; tries < 200; tries++) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return true;
		if (errno != EBUSY)
			return false;
		each_pid(dir, send, SIGKILL);
		sleep_ms(10);
	}
	return false;
}

/* The slots in `dir`: empty directories and empty files, removed; false if
 * one is anything else (node then removes it all). */
static bool remove_empty_slots(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT || errno == ENOTDIR;
	struct dirent *e;
	struct stat st;
	bool ok = true;
	while (ok && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			ok = false;
		else if (S_ISDIR(st.st_mode))
			ok = unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) == 0;
		else
			ok = S_ISREG(st.st_mode) && st.st_size == 0 && unlinkat(dirfd(d), e->d_name, 0) == 0;
	}
	closedir(d);
	return ok;
}

/* Whether state.json is all the directory still holds (it goes last). */
static bool only_state_left(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool only = d != NULL;
	while (only && (e = readdir(d)))
		only = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "state.json");
	if (d)
		closedir(d);
	return only;
}

static void delete_verb(const struct record *r, bool force)
{
	static const char *FILES[] = { "exec.fifo", "plan.txt", "spec.json", "state.tmpl", "fast" };
	/* rootfs: where the bundle's root was bound; staged: where /dev and the
	 * binds waited for their turn (plan/stage-steps.ts), empty slots. */
	static const char *DIRS[] = { "rootfs", "staged" };
	char path[PATH_MAX + 16];
	if (r->hooks)
		fallback(); /* poststop */
	const char *status = status_of(r);
	if (!force && strcmp(status, "stopped") && strcmp(status, "created"))
		fallback(); /* "cannot delete container … that is not stopped" */
	if (!strcmp(status, "paused"))
		thaw(r);
	if (strcmp(status, "stopped"))
		kill((pid_t)r->pid, SIGKILL);
	for (int i = 0; i < r->ncgroups; i++)
		if (!remove_cgroup(r->cgroups[i]))
			fallback();
	for (int i = 0; i < r->nabove; i++)
		rmdir(r->above[i]); /* only when empty: another container may use it */
	/* The empty mount points first: if one is not empty, node removes it all
	 * while state.json still says what the directory is. */
	for (size_t i = 0; i < sizeof(DIRS) / sizeof(*DIRS); i++) {
		snprintf(path, sizeof(path), "%s/%s", r->dir, DIRS[i]);
		if (!remove_empty_slots(path) || (rmdir(path) < 0 && errno != ENOENT))
			fallback();
	}
	for (size_t i = 0; i < sizeof(FILES) / sizeof(*FILES); i++) {
		snprintf(path, sizeof(path), "%s/%s", r->dir, FILES[i]);
		unlink(path);
	}
	if (!only_state_left(r->dir))
		fallback(); /* something unexpected in it: node removes it all */
	snprintf(path, sizeof(path), "%s/state.json", r->dir);
	unlink(path);
	rmdir(r->dir);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 1;
	/* node ENTRY ARGS…, for the fallback. */
	fallback_argv = calloc((size_t)argc + 1, sizeof(*fallback_argv));
	if (!fallback_argv)
		return 1;
	fallback_argv[0] = "node";
	for (int i = 1; i < argc; i++)
		fallback_argv[i] = argv[i];

	const char *root = "/run/minibox-runc";
	int i = 2;
	/* runc's global flags; --debug and anything unknown go to node. */
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--root") && i + 1 < argc)
			root = argv[++i];
		else if (!strncmp(argv[i], "--root=", 7))
			root = argv[i] + 7;
		else if ((!strcmp(argv[i], "--log") || !strcmp(argv[i], "--log-format") ||
			  !strcmp(argv[i], "--rootless")) && i + 1 < argc)
			i++; /* nothing is logged on success */
		else
			fallback();
	}
	if (i >= argc)
		fallback();
	const char *verb = argv[i++];
	bool all = false, force = false;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(verb, "kill") && (!strcmp(argv[i], "--all") || !strcmp(argv[i], "-a")))
			all = true;
		else if (!strcmp(verb, "delete") && (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f")))
			force = true;
		else
			fallback();
	}
	int left = argc - i;
	bool is_kill = !strcmp(verb, "kill");
	if (left < 1 || left > (is_kill ? 2 : 1))
		fallback();
	struct record r = { 0 };
	if (!strcmp(verb, "state") || !strcmp(verb, "start") || is_kill || !strcmp(verb, "delete"))
		load_record(root, argv[i], &r);
	else
		fallback();
	if (!strcmp(verb, "state"))
		state_verb(&r);
	else if (!strcmp(verb, "start"))
		start_verb(&r);
	else if (is_kill)
		kill_verb(&r, all, left == 2 ? argv[i + 1] : NULL);
	else
		delete_verb(&r, force);
	return fflush(stdout) == 0 ? 0 : 1;
}
