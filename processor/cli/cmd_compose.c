/* `churnstream compose`: turns churn alerts into retention messages written by a language
 * model behind guardrails (compose.h). Live mode consumes topic.alerts in its own consumer
 * group and produces one RetentionMessage per alert to topic.messages, committing an alert's
 * offset only after its message (or the template fallback) is acknowledged; --dry-run reads
 * replay's --alerts-out JSON lines and writes JSON lines, with no broker. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "cli_args.h"
#include "commands.h"
#include "compose.h"
#include "compose_live.h"
#include "compose_track.h"
#include "outfile.h"

static void usage(FILE *out)
{
    fputs("usage: churnstream compose [--max N] [--timeout S] [--print] [config options]\n"
          "       churnstream compose --dry-run --alerts-in FILE.jsonl --out FILE.jsonl\n"
          "\n"
          "Writes one retention message per churn alert: a short text for the customer and a\n"
          "paragraph for the account manager. An OpenAI-compatible endpoint (llm.url) writes\n"
          "the wording only; the offer (the alert's recommended action), the numbers and the\n"
          "names are churnstream's. Each part is checked (non-empty, length bounds, no digit,\n"
          "currency or link, no template token); a failed check, an endpoint error or timeout,\n"
          "or an open circuit breaker (llm.breaker_failures, llm.breaker_cooldown) gives the\n"
          "deterministic template instead, marked source=template with its fallback_reason.\n"
          "\n"
          "Live mode reads topic.alerts in consumer group compose.group_id and produces\n"
          "RetentionMessage records (schemas/retention_message.avsc, single-object framing)\n"
          "to topic.messages, key = user_id, idempotent producer. llm.concurrency alerts are\n"
          "answered at once, so messages come out in the order they are answered. A\n"
          "partition's offset is committed past an alert only once its message and those of\n"
          "all earlier alerts of the partition are acknowledged, so a crash re-sends, never\n"
          "loses; an alert_id already answered in this run is skipped.\n"
          "\n"
          "  --dry-run          no Kafka: read --alerts-in, write --out\n"
          "  --alerts-in FILE   JSON lines from `churnstream replay --alerts-out`\n"
          "  --out FILE         JSON lines, one message per alert, in the order answered\n"
          "                     (\"-\" = stdout)\n"
          "  --max N            live mode: exit after answering N alerts\n"
          "  --timeout S        live mode: exit when no alert arrived for S seconds\n"
          "  --print            live mode: also print each message produced as one JSON line\n"
          "  --help             this text\n"
          "\n"
          "Prints a summary at the end: LLM vs template counts, fallbacks by reason,\n"
          "latency p50/p99 of the endpoint per alert.\n"
          "Exit status: 0 ok, 1 runtime failure (Kafka, unreadable input line, output file),\n"
          "2 usage or config error.\n"
          "Config keys that matter here: llm.*, topic.alerts, topic.messages,\n"
          "compose.group_id, alerts.schemas_dir (alerts from a newer schema), kafka.*\n"
          "(kafka.group.id is replaced by compose.group_id).\n",
          out);
}

/* ---- dry run ------------------------------------------------------------------------- */

/* The dry run's input and counts. */
typedef struct dry_s {
    FILE *in;
    const char *in_path;
    char *line;
    size_t line_cap;
    long long lineno, bad, dup;
    ct_seen_t seen;
} dry_t;

/* Reads lines until one alert is handed to the composer: 1, 0 at the end of the input, -1
 * when out of memory. Unreadable lines and duplicate alert ids are counted and skipped. */
static int dry_submit_next(dry_t *d, cm_composer_t *cm)
{
    while (getline(&d->line, &d->line_cap, d->in) > 0) {
        d->lineno++;
        if (d->line[strspn(d->line, " \t\r\n")] == '\0')
            continue;
        alert_t a;
        char names[ALERT_TOP_FACTORS][65];
        char why[256];
        if (cm_alert_from_json(d->line, &a, names, why, sizeof why) != 0) {
            fprintf(stderr, "churnstream compose: %s:%lld: skipped: %s\n", d->in_path, d->lineno,
                    why);
            d->bad++;
            continue;
        }
        int s = ct_seen_add(&d->seen, a.alert_id);
        if (s < 0)
            return -1;
        if (s == 1) {
            d->dup++;
            continue;
        }
        /* the tag is the line number, for an error message about its answer */
        return cm_submit(cm, &a, (void *)(intptr_t)d->lineno) == 0 ? 1 : -1;
    }
    return 0;
}

/* Answers every alert of d's input, llm.concurrency at a time, writing each message as it
 * is answered (not in input order). 0, or 1 on a failure. */
static int dry_answer_all(dry_t *d, cm_composer_t *cm, FILE *out)
{
    int eof = 0;
    cm_result_t *r = malloc(sizeof *r);
    if (!r) {
        fprintf(stderr, "churnstream compose: out of memory\n");
        return 1;
    }
    int rc = 0;
    while (!rc && !cli_stop_requested) {
        while (!eof && cm_ready(cm)) {
            int s = dry_submit_next(d, cm);
            if (s < 0) {
                fprintf(stderr, "churnstream compose: out of memory\n");
                rc = 1;
            }
            eof = s <= 0;
        }
        if (rc || (eof && cm_pending(cm) == 0))
            break;
        void *tag;
        if (cm_next(cm, 200, r, &tag) != 1)
            continue;
        char *js = cm_result_to_json(r, cm_model(cm));
        if (!js) {
            fprintf(stderr, "churnstream compose: %s:%lld: message not representable as JSON\n",
                    d->in_path, (long long)(intptr_t)tag);
            rc = 1;
            break;
        }
        fprintf(out, "%s\n", js);
        free(js);
    }
    free(r);
    return rc;
}

static int dry_run(cfg_t *cfg, const char *in_path, const char *out_path)
{
    char err[512];
    if (of_same_file(out_path, in_path)) {
        fprintf(stderr, "churnstream compose: --out %s is the --alerts-in file\n", out_path);
        return 2;
    }
    dry_t d = {.in_path = in_path};
    if (!(d.in = fopen(in_path, "r"))) {
        fprintf(stderr, "churnstream compose: --alerts-in %s: %s\n", in_path, strerror(errno));
        return 1;
    }
    cm_composer_t *cm = cm_new(cfg, NULL, err, sizeof err);
    if (!cm) {
        fprintf(stderr, "churnstream compose: %s\n", err);
        fclose(d.in);
        return 2;
    }
    of_t *of = of_open(out_path, err, sizeof err);
    if (!of) {
        fprintf(stderr, "churnstream compose: --out %s\n", err);
        cm_destroy(cm);
        fclose(d.in);
        return 1;
    }
    cli_catch_stop_signals();
    int rc = dry_answer_all(&d, cm, of_file(of));
    if (ferror(d.in)) {
        fprintf(stderr, "churnstream compose: --alerts-in %s: read error\n", in_path);
        rc = 1;
    }
    if (cli_stop_requested && !rc) {
        fprintf(stderr, "churnstream compose: interrupted: %s not written\n", out_path);
        of_abort(of);
        rc = 1;
    } else if (rc) {
        of_abort(of);
    } else if (of_commit(of, err, sizeof err) != 0) {
        fprintf(stderr, "churnstream compose: --out %s\n", err);
        rc = 1;
    }
    cm_print_summary(cm, stdout);
    printf("compose: input: %lld lines, %lld unreadable, %lld duplicate alert ids skipped\n",
           d.lineno, d.bad, d.dup);
    if (d.bad && !rc)
        rc = 1;
    free(d.line);
    ct_seen_free(&d.seen);
    cm_destroy(cm);
    fclose(d.in);
    return rc;
}

int cmd_compose(cfg_t *cfg, int argc, char **argv)
{
    enum { O_DRY = 1000, O_IN, O_OUT, O_PRINT };
    static const struct option longopts[] = {
        {"dry-run", no_argument, 0, O_DRY},   {"alerts-in", required_argument, 0, O_IN},
        {"out", required_argument, 0, O_OUT}, {"print", no_argument, 0, O_PRINT},
        {"max", required_argument, 0, 'm'},   {"timeout", required_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    int dry = 0, print = 0, c;
    const char *in_path = NULL, *out_path = NULL;
    long long max_messages = 0;
    double timeout_s = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_DRY:
            dry = 1;
            break;
        case O_IN:
            in_path = optarg;
            break;
        case O_OUT:
            out_path = optarg;
            break;
        case O_PRINT:
            print = 1;
            break;
        case 'm':
            if (cli_int("compose", "--max", optarg, 1, LLONG_MAX, &max_messages) != 0)
                return 2;
            break;
        case 'T':
            if (cli_double("compose", "--timeout", optarg, 1e-3, 1e6, &timeout_s) != 0)
                return 2;
            break;
        default:
            return cli_help_or_bad_option("compose", c, argv[optind - 1], usage);
        }
    }
    if (cli_no_operands("compose", argc, argv, 0) != 0)
        return 2;
    if (dry) {
        if (!in_path || !out_path) {
            fprintf(stderr,
                    "churnstream compose: --dry-run needs --alerts-in FILE and --out FILE\n");
            return 2;
        }
        if (max_messages || timeout_s > 0 || print) {
            fprintf(stderr,
                    "churnstream compose: --max, --timeout and --print apply to live mode only\n");
            return 2;
        }
        return dry_run(cfg, in_path, out_path);
    }
    if (in_path || out_path) {
        fprintf(stderr, "churnstream compose: --alerts-in and --out need --dry-run\n");
        return 2;
    }
    return compose_live(cfg, max_messages, timeout_s, print);
}
