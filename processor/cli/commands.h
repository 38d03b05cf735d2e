/* Subcommands of the one binary. Each gets the loaded config and the arguments left after
 * config flags were taken out (argv[0] is the subcommand name). Returns the process exit
 * status: 0 ok, 1 runtime failure, 2 usage or config error. Each handles --help itself. */
#ifndef CS_COMMANDS_H
#define CS_COMMANDS_H

#include "config.h"

int cmd_run(cfg_t *cfg, int argc, char **argv);
int cmd_replay(cfg_t *cfg, int argc, char **argv);
int cmd_gen(cfg_t *cfg, int argc, char **argv);
int cmd_import(cfg_t *cfg, int argc, char **argv);
int cmd_inspect(cfg_t *cfg, int argc, char **argv);
int cmd_forget(cfg_t *cfg, int argc, char **argv);
int cmd_migrate(cfg_t *cfg, int argc, char **argv);
int cmd_tail(cfg_t *cfg, int argc, char **argv);
int cmd_respond(cfg_t *cfg, int argc, char **argv);
int cmd_compose(cfg_t *cfg, int argc, char **argv);
int cmd_mock_kafka(cfg_t *cfg, int argc, char **argv);

#endif
