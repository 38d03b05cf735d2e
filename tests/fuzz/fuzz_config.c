/* libFuzzer target for the config file parser (cfg_load_file, through a memfd) and the value
 * parsers behind it. A load either succeeds, and then the printed values must load back to
 * the same printed values (cfg_print_values writes a valid config file), or fails with a
 * message that never contains a value given for a secret key. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "S3cr3tPW"

static char *print_values(const cfg_t *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    cfg_print_values(f, c);
    fclose(f);
    return buf;
}

static int load_text(cfg_t *c, const char *text, size_t len, char *err, size_t errsz)
{
    int fd = memfd_create("fuzz_config", 0);
    if (fd < 0)
        return -2;
    if (len && write(fd, text, len) != (ssize_t)len) {
        close(fd);
        return -2;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int rc = cfg_load_file(c, path, err, errsz);
    close(fd);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The input, then a line setting a secret that a syntax error must never echo. */
    char *text = malloc(size + 64);
    if (!text)
        return 0;
    memcpy(text, data, size);
    size_t len = size;
    len += (size_t)snprintf(text + len, 64, "\nredis.password: " SECRET "\n");

    char err[1024] = "";
    cfg_t *c = cfg_new();
    if (!c)
        abort();
    int rc = load_text(c, text, len, err, sizeof err);
    if (rc == -1) {
        if (err[0] == '\0')
            abort(); /* a failure always says why */
        /* The fuzzed part may itself hold the secret text; only the appended line is ours. */
        if (strstr(err, SECRET) && !memmem(data, size, SECRET, strlen(SECRET)))
            abort();
    }
    cfg_destroy(c);

    /* Without the appended broken line: a successful load must round-trip. */
    c = cfg_new();
    if (load_text(c, (const char *)data, size, err, sizeof err) == 0) {
        char *first = print_values(c);
        cfg_t *again = cfg_new();
        if (load_text(again, first, strlen(first), err, sizeof err) != 0) {
            fprintf(stderr, "printed values do not load back: %s\n%s\n", err, first);
            abort();
        }
        char *second = print_values(again);
        if (strcmp(first, second) != 0)
            abort();
        free(first);
        free(second);
        cfg_destroy(again);
    }
    cfg_destroy(c);

    int64_t ms;
    char *dur = strndup((const char *)data, size < 64 ? size : 64);
    if (dur) {
        cfg_parse_duration_ms(dur, &ms);
        free(dur);
    }
    free(text);
    return 0;
}
