/* Logging to stderr in logfmt or JSON lines. The message is escaped for the chosen format
 * so a user_id or an error text can never break a line apart. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static log_level_t log_level = LOG_INFO;
static int log_json = 0;
static const char *level_names[] = {"debug", "info", "warn", "error", "off"};

void log_set_level(log_level_t level)
{
    log_level = level;
}

log_level_t log_get_level(void)
{
    return log_level;
}

void log_set_json(int json)
{
    log_json = json;
}

/* Appends s escaped for a double-quoted logfmt/JSON string; returns the new length. */
static size_t append_escaped(char *buf, size_t len, size_t cap, const char *s)
{
    for (; *s && len + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[len++] = '\\';
            buf[len++] = (char)c;
        } else if (c == '\n') {
            buf[len++] = '\\';
            buf[len++] = 'n';
        } else if (c < 0x20) {
            len += (size_t)snprintf(buf + len, cap - len, "\\u%04x", c);
        } else {
            buf[len++] = (char)c;
        }
    }
    return len;
}

void log_emit(log_level_t level, const char *module, const char *fmt, ...)
{
    if (level < log_level || level >= LOG_OFF)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t wl = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + wl, sizeof(when) - wl, ".%03ldZ", ts.tv_nsec / 1000000);

    char line[4608];
    size_t len;
    if (log_json)
        len = (size_t)snprintf(line, sizeof(line),
                               "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"%s\",\"msg\":\"", when,
                               level_names[level], module);
    else
        len = (size_t)snprintf(line, sizeof(line), "ts=%s level=%s module=%s msg=\"", when,
                               level_names[level], module);
    len = append_escaped(line, len, sizeof(line) - 4, msg);
    memcpy(line + len, log_json ? "\"}\n" : "\"\n", log_json ? 4 : 3);
    len += log_json ? 3 : 2;
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
