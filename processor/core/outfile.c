/* Output files (see outfile.h). Atomic replace is right only for a regular file: renaming a
 * temporary file over /dev/null, a FIFO or a symlink destroys the device node, the pipe or
 * the link (issue 11, item 0), so the target's type decides, with lstat() (not following a
 * symlink: the link itself must survive). */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct of_s {
    FILE *f;
    char *path;
    char *tmp; /* NULL when writing through (stdout, device, FIFO, symlink) */
    int is_stdout;
};

of_t *of_open(const char *path, char *errstr, size_t errstr_size)
{
    of_t *of = calloc(1, sizeof *of);
    if (!of || !(of->path = strdup(path))) {
        snprintf(errstr, errstr_size, "%s: out of memory", path);
        free(of);
        return NULL;
    }
    if (strcmp(path, "-") == 0) {
        of->f = stdout;
        of->is_stdout = 1;
        return of;
    }
    struct stat st;
    int exists = lstat(path, &st) == 0;
    if (!exists && errno != ENOENT) {
        snprintf(errstr, errstr_size, "%s: cannot create: %s", path, strerror(errno));
        goto fail;
    }
    if (exists && !S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode)) {
            snprintf(errstr, errstr_size, "%s: cannot create: is a directory", path);
            goto fail;
        }
        /* Device, FIFO, socket or symlink: written through, never replaced. */
        if (!(of->f = fopen(path, "w"))) {
            snprintf(errstr, errstr_size, "%s: cannot open for writing: %s", path, strerror(errno));
            goto fail;
        }
        return of;
    }
    /* Same directory as the target, so rename() is atomic (no cross-device move). */
    size_t cap = strlen(path) + 16;
    if (!(of->tmp = malloc(cap))) {
        snprintf(errstr, errstr_size, "%s: out of memory", path);
        goto fail;
    }
    snprintf(of->tmp, cap, "%s.XXXXXX", path);
    int fd = mkstemp(of->tmp);
    if (fd < 0) {
        snprintf(errstr, errstr_size, "%s: cannot create a temporary file beside it: %s", path,
                 strerror(errno));
        free(of->tmp);
        of->tmp = NULL;
        goto fail;
    }
    /* mkstemp creates 0600; an output file gets the usual 0666 & ~umask (or keeps the mode
     * of the file it replaces). */
    mode_t mode = 0666;
    if (exists) {
        mode = st.st_mode & 07777;
    } else {
        mode_t um = umask(0);
        umask(um);
        mode &= ~um;
    }
    (void)fchmod(fd, mode);
    if (!(of->f = fdopen(fd, "w"))) {
        snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
        close(fd);
        unlink(of->tmp);
        goto fail;
    }
    return of;
fail:
    free(of->tmp);
    free(of->path);
    free(of);
    return NULL;
}

FILE *of_file(of_t *of)
{
    return of->f;
}

const char *of_path(const of_t *of)
{
    return of->path;
}

static void of_free(of_t *of)
{
    free(of->tmp);
    free(of->path);
    free(of);
}

int of_commit(of_t *of, char *errstr, size_t errstr_size)
{
    if (!of)
        return 0;
    int rc = 0;
    errno = 0;
    int ok = !ferror(of->f) && fflush(of->f) == 0;
    /* fsync only what is renamed into place: a device or a pipe may not support it. */
    if (ok && of->tmp && fsync(fileno(of->f)) != 0)
        ok = 0;
    int saved = errno ? errno : EIO;
    if (!of->is_stdout && fclose(of->f) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (!ok) {
        snprintf(errstr, errstr_size, "%s: write failed: %s", of->path, strerror(saved));
        rc = -1;
    } else if (of->tmp && rename(of->tmp, of->path) != 0) {
        snprintf(errstr, errstr_size, "%s: cannot rename %s into place: %s", of->path, of->tmp,
                 strerror(errno));
        rc = -1;
    }
    if (rc != 0 && of->tmp)
        unlink(of->tmp);
    of_free(of);
    return rc;
}

void of_abort(of_t *of)
{
    if (!of)
        return;
    if (of->is_stdout)
        fflush(of->f);
    else
        fclose(of->f);
    if (of->tmp)
        unlink(of->tmp);
    of_free(of);
}

int of_same_file(const char *path, const char *other)
{
    struct stat a, b;
    if (stat(path, &a) != 0 || stat(other, &b) != 0)
        return 0;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}
