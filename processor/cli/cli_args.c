/* Numeric option values, the usage errors of the getopt loops and the stop flag of the
 * commands (cli_args.h). */
#include "cli_args.h"

#include <errno.h>
#include <getopt.h>
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

void cli_bad_option(const char *cmd, const char *arg, void (*usage)(FILE *out))
{
    fprintf(stderr, "churnstream %s: unknown or incomplete option \"%s\"%s\n", cmd, arg,
            usage ? "" : " (see --help)");
    if (usage)
        usage(stderr);
}

int cli_help_or_bad_option(const char *cmd, int c, const char *arg, void (*usage)(FILE *out))
{
    if (c == 'h') {
        usage(stdout);
        return 0;
    }
    cli_bad_option(cmd, arg, usage);
    return 2;
}

int cli_no_operands(const char *cmd, int argc, char *const *argv, int see_help)
{
    if (optind >= argc)
        return 0;
    fprintf(stderr, "churnstream %s: unexpected argument \"%s\"%s\n", cmd, argv[optind],
            see_help ? " (see --help)" : "");
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
