/* file.h — writing output files so that a failure never leaves a half-written file at the name
 * the user asked for. Used by target.c for the compiler's outputs and by `nnc compare`. */
#ifndef NNC_FILE_H
#define NNC_FILE_H

#include <stdbool.h>
#include <stddef.h>

/* Writes DATA to PATH through a temporary file in PATH's directory and a rename. A PATH that
 * exists and is not a regular file (/dev/null, /dev/stdout, a FIFO) is written directly: renaming
 * over it would replace the device. Returns 0, or the errno value of the step that failed (no
 * temporary file is left behind). */
int file_write_atomic(const char *path, const void *data, size_t length);

/* Do both paths name the same existing file (device and inode), whatever their spelling? */
bool file_same(const char *a, const char *b);

#endif
