/* What the commands share: numeric option values, parsed and reported the same way by every
 * command ("churnstream CMD: FLAG: expected an integer in LO..HI, got "TEXT"" on stderr), and
 * the stop flag of the commands that loop until SIGINT or SIGTERM. */
#ifndef CS_CLI_ARGS_H
#define CS_CLI_ARGS_H

#include <signal.h>
#include <stdio.h>

/* A whole decimal integer in [lo, hi] (hi = LLONG_MAX reads "an integer >= lo"). 0, or -1
 * with the message printed. */
int cli_int(const char *cmd, const char *flag, const char *text, long long lo, long long hi,
            long long *out);
/* A finite number in [lo, hi]. 0, or -1 with the message printed. */
int cli_double(const char *cmd, const char *flag, const char *text, double lo, double hi,
               double *out);

/* The two usage errors every getopt_long loop ends with, worded alike by every command.
 * cli_bad_option: getopt_long returned an option it does not know, or one missing its value
 * (`arg` is argv[optind - 1]): prints "churnstream CMD: unknown or incomplete option "ARG""
 * on stderr, then usage(stderr), or " (see --help)" on the same line when usage is NULL.
 * cli_no_operands: after the loop of a command that takes no operands (reads getopt's
 * optind): 0 when none is left, else -1 with "churnstream CMD: unexpected argument "ARG""
 * (and " (see --help)" when see_help) on stderr. */
void cli_bad_option(const char *cmd, const char *arg, void (*usage)(FILE *out));
/* The last case of a loop whose only option without a value is -h/--help: for c == 'h',
 * usage(stdout) and 0; for anything else, cli_bad_option (with usage) and 2 (the exit
 * status of a usage error). `arg` as for cli_bad_option. */
int cli_help_or_bad_option(const char *cmd, int c, const char *arg, void (*usage)(FILE *out));
int cli_no_operands(const char *cmd, int argc, char *const *argv, int see_help);

/* Set by SIGINT or SIGTERM once cli_catch_stop_signals() ran; the loops of tail, compose,
 * respond and mock-kafka poll it. */
extern volatile sig_atomic_t cli_stop_requested;
void cli_catch_stop_signals(void);

#endif
