/* Output files: the one way every writer (scores, alerts, snapshots, rejects, model, report,
 * import and gen output, truth file) opens its target. A regular file or a new path is
 * written to a temporary file beside it and renamed into place on success, so a reader never
 * sees half a file and a failed run leaves the previous one; anything else (a character or
 * block device, a FIFO, a socket, a symlink) is opened and written through, never replaced;
 * "-" is standard output. */
#ifndef CS_OUTFILE_H
#define CS_OUTFILE_H

#include <stddef.h>
#include <stdio.h>

typedef struct of_s of_t;

/* Opens path for writing ("-" = stdout). Returns NULL with errstr set ("PATH: cannot create
 * ...: reason"). The caller owns the result and must end it with of_commit() or of_abort(). */
of_t *of_open(const char *path, char *errstr, size_t errstr_size);

/* The stream to write to; owned by the of_t (never fclose it). */
FILE *of_file(of_t *of);

/* The path given to of_open(), for messages. */
const char *of_path(const of_t *of);

/* Flushes, syncs a regular file, closes and renames the temporary file into place; then
 * frees of. Returns 0, or -1 with errstr set (the temporary file is removed, the target is
 * untouched). of is freed either way; NULL returns 0. */
int of_commit(of_t *of, char *errstr, size_t errstr_size);

/* Closes and frees of without publishing: the temporary file is removed (a written-through
 * target keeps what was written). NULL is a no-op. */
void of_abort(of_t *of);

/* 1 when path names the same existing file as other (same device and inode after following
 * symlinks), else 0: lets a command refuse to overwrite its own input. */
int of_same_file(const char *path, const char *other);

#endif
