/* Numeric command-line option values, parsed and reported the same way by every command:
 * "churnstream CMD: FLAG: expected an integer in LO..HI, got "TEXT"" on stderr. */
#ifndef CS_CLI_ARGS_H
#define CS_CLI_ARGS_H

/* A whole decimal integer in [lo, hi] (hi = LLONG_MAX reads "an integer >= lo"). 0, or -1
 * with the message printed. */
int cli_int(const char *cmd, const char *flag, const char *text, long long lo, long long hi,
            long long *out);
/* A finite number in [lo, hi]. 0, or -1 with the message printed. */
int cli_double(const char *cmd, const char *flag, const char *text, double lo, double hi,
               double *out);

#endif
