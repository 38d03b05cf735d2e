/* Numeric option values and the stop flag of the commands (cli_args.h). */
#include "cli_args.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

int cli_int(const char *cmd, const char *flag, const char *text, long long lo, long long hi,
            long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end != text && !*end && !errno && v >= lo && v <= hi) {
        *out = v;
        return 0;
    }
    if (hi == LLONG_MAX)
        fprintf(stderr, "churnstream %s: %s: expected an integer >= %lld, got \"%s\"\n", cmd, flag,
                lo, text);
    else
        fprintf(stderr, "churnstream %s: %s: expected an integer in %lld..%lld, got \"%s\"\n", cmd,
                flag, lo, hi, text);
    return -1;
}

int cli_double(const char *cmd, const char *flag, const char *text, double lo, double hi,
               double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end != text && !*end && !errno && v >= lo && v <= hi) {
        *out = v;
        return 0;
    }
    fprintf(stderr, "churnstream %s: %s: expected a number in %g..%g, got \"%s\"\n", cmd, flag, lo,
            hi, text);
    return -1;
}

volatile sig_atomic_t cli_stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    cli_stop_requested = 1;
}

void cli_catch_stop_signals(void)
{
    cli_stop_requested = 0;
    signal(SIGTERM, on_stop_signal);
    signal(SIGINT, on_stop_signal);
}
