/* What the commands share: numeric option values, parsed and reported the same way by every
 * command ("churnstream CMD: FLAG: expected an integer in LO..HI, got "TEXT"" on stderr), and
 * the stop flag of the commands that loop until SIGINT or SIGTERM. */
#ifndef CS_CLI_ARGS_H
#define CS_CLI_ARGS_H

#include <signal.h>

/* A whole decimal integer in [lo, hi] (hi = LLONG_MAX reads "an integer >= lo"). 0, or -1
 * with the message printed. */
int cli_int(const char *cmd, const char *flag, const char *text, long long lo, long long hi,
            long long *out);
/* A finite number in [lo, hi]. 0, or -1 with the message printed. */
int cli_double(const char *cmd, const char *flag, const char *text, double lo, double hi,
               double *out);

/* Set by SIGINT or SIGTERM once cli_catch_stop_signals() ran; the loops of tail, compose,
 * respond and mock-kafka poll it. */
extern volatile sig_atomic_t cli_stop_requested;
void cli_catch_stop_signals(void);

#endif
