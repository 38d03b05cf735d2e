/* Integration-test environment: reads the service endpoints exported by tests/run-all.sh
 * and fails loudly when one is missing, builds unique resource names, and keeps time. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testenv.h"

const char *testenv_get(const char *name)
{
    const char *value = getenv(name);

    if (value == NULL || value[0] == '\0')
        fail_msg("environment variable %s is not set: integration tests need the real "
                 "services; run them through `make test` (tests/run-all.sh), which starts "
                 "Redis and Kafka and exports CS_*",
                 name);
    return value;
}

int testenv_get_port(const char *name)
{
    const char *text = testenv_get(name);
    char *end = NULL;
    long port;

    errno = 0;
    port = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || port < 1 || port > 65535)
        fail_msg("environment variable %s: expected a TCP port 1..65535, got \"%s\"", name, text);
    return (int)port;
}

void testenv_unique_name(const char *prefix, char *buf, size_t buf_size)
{
    static unsigned seq;
    struct timespec ts;
    int n;

    clock_gettime(CLOCK_REALTIME, &ts);
    n = snprintf(buf, buf_size, "%s-%ld-%u-%lld%09ld", prefix, (long)getpid(), seq++,
                 (long long)ts.tv_sec, ts.tv_nsec);
    if (n < 0 || (size_t)n >= buf_size)
        fail_msg("testenv_unique_name: buffer of %zu bytes too small for prefix \"%s\"", buf_size,
                 prefix);
}

int64_t testenv_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
