/* `churnstream inspect`: placeholder until the real command lands; it answers --help and
 * otherwise refuses with status 2 so scripts never mistake it for a working command. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

int cmd_inspect(cfg_t *cfg, int argc, char **argv)
{
    (void)cfg;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: churnstream inspect [options]\n\nShow a user's features, score and "
                   "segment, or the model's segments.\n");
            return 0;
        }
    }
    fprintf(stderr, "churnstream inspect: not available in this build yet\n");
    return 2;
}
