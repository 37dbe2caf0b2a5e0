/*
 * tiocsti: push a line into the input of the terminal behind each of
 * stdin, stdout and stderr with TIOCSTI, one character at a time, as the
 * terminal-injection escapes do (CVE-2017-5226 in bubblewrap, CVE-2019-10063
 * in flatpak): when the terminal is the caller's, the line is read by the
 * caller's shell after the container exits. The line is "INJECTED" alone,
 * which a shell would only try to run as a command of that name. Prints
 * "fdN tiocsti=ok|ERRNO" on stderr for each.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/ioctl.h>

int main(void)
{
	const char *line = "INJECTED\n";
	for (int fd = 0; fd <= 2; fd++) {
		int err = 0;
		for (const char *c = line; *c && !err; c++)
			if (ioctl(fd, TIOCSTI, c) < 0)
				err = errno;
		if (err)
			fprintf(stderr, "fd%d tiocsti=%d\n", fd, err);
		else
			fprintf(stderr, "fd%d tiocsti=ok\n", fd);
	}
	return 0;
}
