/* `churnstream import`: placeholder until the real command lands; it answers --help and
 * otherwise refuses with status 2 so scripts never mistake it for a working command. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

int cmd_import(cfg_t *cfg, int argc, char **argv)
{
    (void)cfg;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: churnstream import [options]\n\nConvert Online Retail (or any CSV "
                   "through a column mapping) to an Avro container file.\n");
            return 0;
        }
    }
    fprintf(stderr, "churnstream import: not available in this build yet\n");
    return 2;
}
