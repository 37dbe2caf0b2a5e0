/*
 * shocker FILE: CVE-2014-3519 ("shocker"), the original exploit's first
 * move. FILE is a file of the container that lives on a host filesystem
 * (Docker's /.dockerinit then; minibox's bind-mounted /etc/hosts now): any
 * descriptor on that filesystem lets open_by_handle_at resolve a handle
 * anywhere in it, outside the container's root. The handle is the one the
 * exploit brute-forced its walk from: handle_bytes 8, type 1
 * (FILEID_INO32_GEN), inode 2 and generation 0, the root directory of an
 * ext4 filesystem. Prints
 *   name_to_handle_at=ok|ERRNO
 *   open_by_handle_at=ok ino=N|ERRNO
 * and reads nothing through what it may have opened.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ino32_handle {
	unsigned int handle_bytes;
	int handle_type;
	uint32_t ino, generation; /* f_handle: FILEID_INO32_GEN's layout */
};

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: shocker FILE\n");
		return 2;
	}
	int mount_fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (mount_fd < 0) {
		fprintf(stderr, "shocker: open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}

	/* What the kernel says of a handle for FILE itself (the call is refused
	 * by the same rules when it is refused at all). */
	struct {
		struct file_handle fh;
		unsigned char bytes[MAX_HANDLE_SZ];
	} own = { .fh = { .handle_bytes = MAX_HANDLE_SZ } };
	int mount_id;
	if (name_to_handle_at(mount_fd, "", &own.fh, &mount_id, AT_EMPTY_PATH) == 0)
		printf("name_to_handle_at=ok\n");
	else
		printf("name_to_handle_at=%d\n", errno);

	struct ino32_handle root = { .handle_bytes = 8, .handle_type = 1, .ino = 2, .generation = 0 };
	int fd = open_by_handle_at(mount_fd, (struct file_handle *)&root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		printf("open_by_handle_at=%d\n", errno);
	} else {
		struct stat st;
		fstat(fd, &st);
		printf("open_by_handle_at=ok ino=%lu\n", (unsigned long)st.st_ino);
		close(fd);
	}
	close(mount_fd);
	return 0;
}
