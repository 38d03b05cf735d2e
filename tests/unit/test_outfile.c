/* Unit tests for the output helper (processor/core/outfile.h): a regular file or a new path is
 * replaced atomically on commit and left alone on abort; a FIFO and a symlink are written
 * through and survive; "-" is stdout; of_same_file sees through symlinks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outfile.h"

static char dir[64];

static void path_of(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", dir, name);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void read_text(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static size_t entries(void)
{
    char cmd[128], out[32];
    snprintf(cmd, sizeof cmd, "ls -A %s | wc -l", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, sizeof out, p));
    pclose(p);
    return (size_t)atoi(out);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/cs_test_outfile_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_regular_file_commit_and_abort(void **state)
{
    (void)state;
    char p[128], buf[64], err[256];
    path_of(p, sizeof p, "out.txt");
    write_text(p, "old\n");
    of_t *of = of_open(p, err, sizeof err);
    assert_non_null(of);
    fputs("half", of_file(of));
    read_text(p, buf, sizeof buf);
    assert_string_equal(buf, "old\n"); /* nothing visible before the commit */
    of_abort(of);
    read_text(p, buf, sizeof buf);
    assert_string_equal(buf, "old\n"); /* an aborted run leaves the previous file */
    assert_int_equal(entries(), 1);    /* and no temporary file */

    of = of_open(p, err, sizeof err);
    assert_non_null(of);
    fputs("new\n", of_file(of));
    assert_int_equal(of_commit(of, err, sizeof err), 0);
    read_text(p, buf, sizeof buf);
    assert_string_equal(buf, "new\n");
    assert_int_equal(entries(), 1);

    char fresh[128];
    path_of(fresh, sizeof fresh, "fresh.txt");
    of = of_open(fresh, err, sizeof err);
    assert_non_null(of);
    assert_int_equal(of_commit(of, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(fresh, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    unlink(fresh);
    unlink(p);
}

static void test_fifo_and_symlink_written_through(void **state)
{
    (void)state;
    char fifo[128], target[128], link[128], buf[64], err[256];
    path_of(fifo, sizeof fifo, "fifo");
    path_of(target, sizeof target, "target");
    path_of(link, sizeof link, "link");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    /* a reader end held open so opening the FIFO for writing does not block */
    int rfd = open(fifo, O_RDONLY | O_NONBLOCK);
    assert_true(rfd >= 0);
    of_t *of = of_open(fifo, err, sizeof err);
    assert_non_null(of);
    fputs("through\n", of_file(of));
    assert_int_equal(of_commit(of, err, sizeof err), 0);
    ssize_t n = read(rfd, buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, "through\n");
    close(rfd);
    struct stat st;
    assert_int_equal(lstat(fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));

    write_text(target, "old\n");
    assert_int_equal(symlink(target, link), 0);
    of = of_open(link, err, sizeof err);
    assert_non_null(of);
    fputs("via link\n", of_file(of));
    assert_int_equal(of_commit(of, err, sizeof err), 0);
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    read_text(target, buf, sizeof buf);
    assert_string_equal(buf, "via link\n");
    assert_true(of_same_file(link, target));
    assert_false(of_same_file(fifo, target));
    unlink(fifo);
    unlink(link);
    unlink(target);
}

static void test_stdout_and_errors(void **state)
{
    (void)state;
    char err[256] = "";
    of_t *of = of_open("-", err, sizeof err);
    assert_non_null(of);
    assert_ptr_equal(of_file(of), stdout);
    assert_int_equal(of_commit(of, err, sizeof err), 0);
    assert_true(fileno(stdout) >= 0); /* stdout is never closed */

    assert_null(of_open(dir, err, sizeof err));
    assert_non_null(strstr(err, "is a directory"));
    char p[160];
    snprintf(p, sizeof p, "%s/no/such/dir/x", dir);
    assert_null(of_open(p, err, sizeof err));
    assert_non_null(strstr(err, p));
    of_abort(NULL);
    assert_int_equal(of_commit(NULL, err, sizeof err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regular_file_commit_and_abort),
        cmocka_unit_test(test_fifo_and_symlink_written_through),
        cmocka_unit_test(test_stdout_and_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
