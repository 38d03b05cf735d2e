/* Logging: one line per message on stderr, logfmt (default) or JSON lines, with a level
 * and the emitting module. Thread-safe (one write(2) per line). */
#ifndef CS_LOG_H
#define CS_LOG_H

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF } log_level_t;

void log_set_level(log_level_t level);
log_level_t log_get_level(void);
/* 0 = logfmt, 1 = JSON lines. */
void log_set_json(int json);

void log_emit(log_level_t level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(mod, ...) log_emit(LOG_DEBUG, mod, __VA_ARGS__)
#define log_info(mod, ...)  log_emit(LOG_INFO, mod, __VA_ARGS__)
#define log_warn(mod, ...)  log_emit(LOG_WARN, mod, __VA_ARGS__)
#define log_error(mod, ...) log_emit(LOG_ERROR, mod, __VA_ARGS__)

#endif
