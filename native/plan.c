/*
 * The plan: text, one step per line, fields separated by TAB, with \t \n and
 * \\ escaped, in three sections ([setup], [child], [parent]). It is read to
 * EOF, split in place, and checked whole against the op table before the
 * first step runs: a plan with an unknown op or a wrong field count is
 * refused with that step's line, never half-performed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "executor.h"

static char *read_all(int fd)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	while (buf) {
		if (len + 1 >= cap) {
			char *bigger = realloc(buf, cap * 2);
			if (!bigger)
				break;
			buf = bigger;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (n == 0) {
			buf[len] = '\0';
			return buf;
		}
		len += (size_t)n;
	}
	free(buf);
	return NULL;
}

/* Undo the plan's escapes in place. */
static void unescape(char *s)
{
	char *out = s;
	for (; *s; s++) {
		if (*s == '\\' && s[1]) {
			s++;
			*out++ = *s == 't' ? '\t' : *s == 'n' ? '\n' : *s;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* Lines and tabs are counted first, so that steps and field pointers take
 * one allocation each, however many there are: no field is ever dropped. */
static int allocate(struct plan *plan)
{
	size_t lines = 1, tabs = 0;
	for (const char *p = plan->text; *p; p++) {
		lines += *p == '\n';
		tabs += *p == '\t';
	}
	plan->steps = calloc(lines, sizeof(*plan->steps));
	/* A line of n tabs has n + 1 fields and a NULL after them. */
	plan->fields = calloc(tabs + 2 * lines, sizeof(*plan->fields));
	return plan->steps && plan->fields ? 0 : -1;
}

/* Split one line into its fields, NULL-terminated (exec and on-exit hand
 * their tail to execve as argv). Returns the pointers used. */
static size_t split_fields(char *line, struct step *st, char **fields)
{
	int n = 0;
	for (char *f = line; f;) {
		char *tab = strchr(f, '\t');
		if (tab)
			*tab = '\0';
		unescape(f);
		fields[n++] = f;
		f = tab ? tab + 1 : NULL;
	}
	fields[n] = NULL;
	st->field = fields;
	st->nfields = n;
	st->op = find_op(fields[0]);
	return (size_t)n + 1;
}

static struct section *section_named(struct plan *plan, const char *line)
{
	if (!strcmp(line, "[setup]"))
		return &plan->setup;
	if (!strcmp(line, "[child]"))
		return &plan->child;
	if (!strcmp(line, "[parent]"))
		return &plan->parent;
	return NULL;
}

/* Steps are stored in plan order, so each section is a run of them. */
static int parse(struct plan *plan)
{
	struct section *sec = NULL;
	struct step *next = plan->steps;
	char **fields = plan->fields;
	int line = 0;
	for (char *l = plan->text, *end; l; l = end) {
		end = strchr(l, '\n');
		if (end)
			*end++ = '\0';
		line++;
		if (!*l)
			continue;
		struct section *named = section_named(plan, l);
		if (named) {
			if (named->steps)
				return -1; /* a section given twice */
			sec = named;
			sec->steps = next;
			continue;
		}
		if (!sec)
			return -1; /* a step outside any section */
		next->line = line;
		fields += split_fields(l, next++, fields);
		sec->n++;
	}
	return 0;
}

/* An op name as it can appear on a status line: one word, no control bytes. */
static void printable(const char *in, char *out, size_t size)
{
	size_t o = 0;
	for (; *in && o + 1 < size; in++)
		out[o++] = (unsigned char)*in <= ' ' || *in == 0x7f ? '?' : *in;
	out[o] = '\0';
}

static int check_step(const struct step *st)
{
	const struct op *op = st->op;
	int nargs = st->nfields - 1;
	if (!op) {
		char name[64];
		printable(st->field[0], name, sizeof(name));
		status("error %d %s plan 22 unknown op %s", st->line, name, name);
		return -1;
	}
	if (nargs >= op->min_args && (op->max_args == VARIADIC || nargs <= op->max_args) &&
	    (nargs - op->min_args) % op->stride == 0)
		return 0;
	char want[64];
	describe_arity(op, want, sizeof(want));
	status("error %d %s plan 22 %s takes %s, got %d", st->line, op->name, op->name, want, nargs);
	return -1;
}

/* Every step known and well-formed; `clone` ends [setup] and appears nowhere else. */
static int check_plan(const struct plan *plan)
{
	const struct section *sections[] = { &plan->setup, &plan->child, &plan->parent };
	const struct step *clone = &plan->setup.steps[plan->setup.n - 1];
	for (size_t s = 0; s < 3; s++) {
		for (int i = 0; i < sections[s]->n; i++) {
			const struct step *st = &sections[s]->steps[i];
			if (check_step(st) < 0)
				return -1;
			if (st->op->run == NULL && st != clone) {
				status("error %d %s plan 22 %s must be the last step of [setup]", st->line,
				       st->op->name, st->op->name);
				return -1;
			}
		}
	}
	if (clone->op->run != NULL) {
		status("error %d plan read 22 the setup section must end with clone", clone->line);
		return -1;
	}
	return 0;
}

int load_plan(struct executor *ex, int fd)
{
	struct plan *plan = &ex->plan;
	memset(plan, 0, sizeof(*plan));
	plan->text = read_all(fd);
	if (!plan->text || allocate(plan) < 0 || parse(plan) < 0 || plan->setup.n == 0) {
		status("error 0 plan read 22 the plan is malformed");
		return -1;
	}
	return check_plan(plan);
}

/* Copy what the exit needs out of the plan, then free it (~200 KiB that an
 * idle monitor would otherwise carry for the container's whole life). */
void release_plan(struct executor *ex)
{
	if (ex->exit_file)
		ex->exit_file = strdup(ex->exit_file);
	if (ex->exit_hook) {
		size_t n = 0;
		while (ex->exit_hook[n])
			n++;
		char **copy = calloc(n + 1, sizeof(*copy));
		for (size_t i = 0; copy && i < n; i++)
			copy[i] = strdup(ex->exit_hook[i]);
		ex->exit_hook = copy;
	}
	free(ex->plan.steps);
	free(ex->plan.fields);
	free(ex->plan.text);
	memset(&ex->plan, 0, sizeof(ex->plan));
}
