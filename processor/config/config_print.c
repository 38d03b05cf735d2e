/* Printing the configuration: the key reference (`--help`, README, Markdown or text) and
 * the effective values with where each was set (secrets never printed). */
#include "config_internal.h"
#include "numfmt.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

/* ---- printing ---------------------------------------------------------------------------- */

/* Writes s as Markdown table cell text: '|' would end the cell, and outside code spans
 * "<id>" would read as an HTML tag. */
static void md_cell(FILE *out, const char *s, int in_code)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else if (!in_code && *s == '<')
            fputs("&lt;", out);
        else if (!in_code && *s == '>')
            fputs("&gt;", out);
        else
            fputc(*s, out);
    }
}

static void md_code_cell(FILE *out, const char *s, const char *if_empty)
{
    if (*s) {
        fputc('`', out);
        md_cell(out, s, 1);
        fputc('`', out);
    } else {
        fputs(if_empty, out);
    }
}

/* One plain-text reference row, without trailing blanks. */
static void text_row(FILE *out, const char *name, const char *type, const char *def,
                     const char *range, const char *help)
{
    char line[512];
    snprintf(line, sizeof line, "  %-25s %-9s %-16s %s", name, type, def, range);
    size_t len = strlen(line);
    while (len > 0 && line[len - 1] == ' ')
        line[--len] = '\0';
    fprintf(out, "%s\n  %-25s %s\n", line, "", help);
}

static const char *const kafka_default_help[] = {
    "Kafka brokers, host:port[,host:port...].",
    "Consumer group of the processors (instances share the partitions).",
};

void cfg_print_reference(FILE *out, int markdown)
{
    char range[96], name[64];
    if (markdown) {
        fputs("| key | type | default | range | description |\n", out);
        fputs("|---|---|---|---|---|\n", out);
        for (size_t i = 0; i < cfg_nkeys; i++) {
            const cfg_key_t *k = &cfg_keys[i];
            cfg_format_range(k, range, sizeof range);
            fprintf(out, "| `%s` | %s | ", k->name, cfg_type_name(k->type));
            md_code_cell(out, k->def, "(empty)");
            fputs(" | ", out);
            md_code_cell(out, range, "");
            fputs(" | ", out);
            md_cell(out, k->help, 0);
            fputs(" |\n", out);
        }
        for (size_t i = 0; cfg_kafka_defaults[2 * i]; i++) {
            fprintf(out, "| `kafka.%s` | string | ", cfg_kafka_defaults[2 * i]);
            md_code_cell(out, cfg_kafka_defaults[2 * i + 1], "(empty)");
            fputs(" |  | ", out);
            md_cell(out, kafka_default_help[i], 0);
            fputs(" |\n", out);
        }
        fputs("| `kafka.*` | string |  |  | Any other librdkafka property (security.protocol, "
              "sasl.\\*, ssl.\\*, ...), checked when loaded; environment "
              "CHURNSTREAM_KAFKA_&lt;PROPERTY&gt; with '.' as '_'. |\n",
              out);
        return;
    }

    fputs("Configuration keys. Set them in the file given by -c FILE (`key = value` lines, '#'\n"
          "comments, also after a value following a blank; \"...\" keeps a value verbatim), as\n"
          "environment variables CHURNSTREAM_<KEY> (upper case, '.' -> '_'), or as flags\n"
          "--key=VALUE; later sources win. Durations need a unit: ms, s, m, h or d (0 alone).\n\n",
          out);
    fprintf(out, "  %-25s %-9s %-16s %s\n", "KEY", "TYPE", "DEFAULT", "RANGE");
    for (size_t i = 0; i < cfg_nkeys; i++) {
        const cfg_key_t *k = &cfg_keys[i];
        cfg_format_range(k, range, sizeof range);
        text_row(out, k->name, cfg_type_name(k->type), *k->def ? k->def : "(empty)", range,
                 k->help);
    }
    for (size_t i = 0; cfg_kafka_defaults[2 * i]; i++) {
        snprintf(name, sizeof name, "kafka.%s", cfg_kafka_defaults[2 * i]);
        text_row(out, name, "string", cfg_kafka_defaults[2 * i + 1], "", kafka_default_help[i]);
    }
    fprintf(out, "  %-25s %s\n", "kafka.<property>",
            "Any other librdkafka property (security.protocol, sasl.*, ssl.*, ...),");
    fprintf(out, "  %-25s %s\n", "",
            "checked when loaded; environment CHURNSTREAM_KAFKA_<PROPERTY> with '.' as '_'.");
}

void cfg_print_values(FILE *out, const cfg_t *cfg)
{
    char buf[128];
    for (size_t i = 0; i < cfg_nkeys; i++) {
        const cfg_key_t *k = &cfg_keys[i];
        const void *field = (const char *)cfg + k->offset;
        fprintf(out, "%s = ", k->name);
        switch (k->type) {
        case CFG_T_STRING: {
            const char *s = *(char *const *)field;
            if (k->flags & CFG_F_SECRET)
                fputs(s ? "***" : "\"\"", out);
            else
                fprintf(out, "\"%s\"", s ? s : "");
            break;
        }
        case CFG_T_INT:
            fprintf(out, "%d", *(const int *)field);
            break;
        case CFG_T_INT64:
            fprintf(out, "%" PRId64, *(const int64_t *)field);
            break;
        case CFG_T_UINT64:
            fprintf(out, "%" PRIu64, *(const uint64_t *)field);
            break;
        case CFG_T_DOUBLE:
            nf_shortest(buf, sizeof buf, *(const double *)field);
            fputs(buf, out);
            break;
        case CFG_T_BOOL:
            fputs(*(const int *)field ? "true" : "false", out);
            break;
        case CFG_T_DURATION:
            cfg_format_duration(buf, sizeof buf, *(const int64_t *)field);
            fputs(buf, out);
            break;
        case CFG_T_ENUM:
            cfg_enum_name(k->choices, *(const int *)field, buf, sizeof buf);
            fputs(buf, out);
            break;
        }
        fputc('\n', out);
    }
    for (const char *const *p = cfg_kafka_defaults; *p; p += 2)
        if (cfg_kafka_find(cfg, p[0]) < 0)
            fprintf(out, "kafka.%s = \"%s\"\n", p[0], p[1]);
    for (int i = 0; i < cfg->kafka_count; i++)
        fprintf(out, "kafka.%s = \"%s\"\n", cfg->kafka_keys[i],
                cfg_kafka_prop_is_secret(cfg->kafka_keys[i]) ? "***" : cfg->kafka_values[i]);
}
