/* The full configuration load of a command and its cross-key rules (config_load.c). It lives
 * in cli/ because the rules reach every layer (alert actions, model snapshots, schemas);
 * config.h below it is the table and the parsers, which depend on nothing. */
#ifndef CS_CONFIG_LOAD_H
#define CS_CONFIG_LOAD_H

#include <stddef.h>

#include "config.h"

/* Full load for a subcommand: finds every -c FILE / --config=FILE (or, when none,
 * CHURNSTREAM_CONFIG) in argv and loads the files in order (a later file overrides an
 * earlier one key by key), then env, then every --key=value flag whose key is in the table or
 * starts with kafka. or redis.; every other argument (positional, command-specific flags) is copied
 * in order to rest_argv (which must hold argc entries; pointers alias argv) and counted in
 * *rest_argc. Returns 0, or -1 with errstr set (callers exit with status 2). */
int cfg_load_all(cfg_t *cfg, int argc, char **argv, char **envp, int *rest_argc, char **rest_argv,
                 char *errstr, size_t errstr_size);

/* Cross-key rules, checked by cfg_load_all() once every source is applied (config_load.c):
 * events.allowed_lateness below tick.interval and label.horizon, alert.actions parses and
 * names segments below model.k, schemas.dir loads. Returns 0, or -1 with errstr naming the
 * source and the key ("s.conf:4: alert.actions: entry 1: ..."); callers exit with status 2. */
int cfg_check(const cfg_t *cfg, char *errstr, size_t errstr_size);

/* Checks a model snapshot given with --model-in (path): it must load whole (magic, version,
 * checksum) and have this build's feature count; model.k set explicitly to a k other than
 * the file's is an error, otherwise cfg->model_k becomes the file's k and the rules that
 * depend on it (alert.actions) are checked again. Returns 0, or -1 with errstr set; every
 * command taking --model-in calls it before any work and exits with status 2 on -1. */
int cfg_check_model_in(cfg_t *cfg, const char *path, char *errstr, size_t errstr_size);

#endif
