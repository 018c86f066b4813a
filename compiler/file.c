/* file.c — atomic output files (see file.h). */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(int fd, const char *data, size_t length) {
    while (length > 0) {
        ssize_t n = write(fd, data, length);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        data += n;
        length -= (size_t)n;
    }
    return 0;
}

int file_write_atomic(const char *path, const void *data, size_t length) {
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode)) return EISDIR;
        int fd = open(path, O_WRONLY | O_TRUNC);
        if (fd < 0) return errno;
        int error = write_all(fd, data, length);
        if (close(fd) != 0 && !error) error = errno;
        return error;
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) return ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) return errno;
    int error = write_all(fd, data, length);
    /* close reports the errors of delayed writes (NFS, some full file systems) */
    if (close(fd) != 0 && !error) error = errno;
    if (!error && rename(tmp, path) != 0) error = errno;
    if (error) unlink(tmp);
    return error;
}

bool file_same(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}
