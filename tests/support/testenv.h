/* Helpers shared by the integration tests: the service endpoints that tests/run-all.sh
 * exports (CS_REDIS_HOST, CS_REDIS_PORT, CS_KAFKA_BROKERS, CS_BIN, CS_TMP, CS_ROOT), unique
 * names for topics, groups and keys, and a monotonic clock. Include after <cmocka.h>. */
#ifndef CS_TESTENV_H
#define CS_TESTENV_H

#include <stddef.h>
#include <stdint.h>

/* Value of environment variable `name`. An unset or empty variable fails the calling cmocka
 * test with a message naming it and how to get it (tests never skip silently), so this only
 * returns non-empty strings. The string belongs to the environment: do not free. */
const char *testenv_get(const char *name);

/* `name` parsed as a TCP port; fails the calling test unless it is 1..65535. */
int testenv_get_port(const char *name);

/* Writes "<prefix>-<pid>-<seq>-<ns>" into buf (always NUL-terminated; fails the calling test
 * if it does not fit), unique across processes and calls, for topics, groups and key
 * prefixes on services shared by all tests of a run. */
void testenv_unique_name(const char *prefix, char *buf, size_t buf_size);

/* Milliseconds on CLOCK_MONOTONIC, for deadlines. */
int64_t testenv_now_ms(void);

#endif
