/* Live mode of `churnstream compose` (cmd_compose.c parses the options): topic.alerts in,
 * one RetentionMessage per alert out, llm.concurrency alerts in flight. */
#ifndef CS_COMPOSE_LIVE_H
#define CS_COMPOSE_LIVE_H

#include "config.h"

/* Runs until a signal, max_messages alerts answered (0: no limit) or timeout_s without an
 * alert (0: none), then finishes the alerts in flight, commits and closes. print writes
 * each message produced as a JSON line on stdout. Returns the exit status: 0, 1 on a
 * runtime failure (a message not produced: its offset stays uncommitted), 2 on a
 * configuration error. */
int compose_live(cfg_t *cfg, long long max_messages, double timeout_s, int print);

#endif
