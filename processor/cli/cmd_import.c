/* `churnstream import`: a CSV (plain or gzip; Online Retail through a preset, anything else
 * through --map) to an Avro container file of events sorted by event time, with a summary
 * of rows read, events written, rows dropped by reason and the first bad lines. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "cli_args.h"
#include "commands.h"
#include "csv_import.h"
#include "log.h"
#include "outfile.h"

static void import_usage(FILE *out)
{
    fputs(
        "usage: churnstream import [--preset NAME] [--delimiter C|tab|ws] [--no-header]\n"
        "                          [--map SPEC] [--strict] INPUT OUTPUT.avro\n"
        "\n"
        "Converts a CSV file (gzip read transparently, LF or CRLF, RFC 4180 quotes) to an\n"
        "Avro container file of events sorted by event time (ties keep file order).\n"
        "\n"
        "  --preset online-retail  UCI Online Retail: rows without CustomerID dropped,\n"
        "                          user_id = CustomerID as an integer, one purchase per line,\n"
        "                          amount = Quantity*UnitPrice, item_id = StockCode; invoices\n"
        "                          starting with C are refunds with amount |Quantity*UnitPrice|;\n"
        "                          Online Retail II's header (Invoice, Price, Customer ID) too.\n"
        "                          Dates %Y-%m-%d %H:%M:%S; others by an override, e.g.\n"
        "                          --map 'event_time=InvoiceDate:%m/%d/%Y %H:%M'\n"
        "  --map SPEC              user_id=COL,event_time=COL[:FORMAT],amount=COL[*COL],\n"
        "                          event_type=COL|SYMBOL[,item_id=COL,category=COL,channel=COL]\n"
        "                          COL: 1-based index or header name. FORMAT: strptime (UTC),\n"
        "                          e.g. %Y%m%d or %Y-%m-%d %H:%M:%S, or epoch_ms, epoch_s, iso\n"
        "                          (default iso: date, time, fraction, Z, +hh:mm or UTC).\n"
        "                          event_type: a column of schema symbols (any case, - or\n"
        "                          space for _; view, cart, addtocart, transaction, order\n"
        "                          read as page_view, add_to_cart, purchase; unknown values\n"
        "                          become other) or a constant like purchase.\n"
        "                          Entries override the preset's. Empty amounts are 0;\n"
        "                          with a delimiter other than ',', an amount with one ','\n"
        "                          and no '.' has a decimal comma (12,5 = 12.5).\n"
        "                          Without --preset and --map, a header naming user_id,\n"
        "                          event_type and ts_ms (epoch ms) or event_time (ISO-8601),\n"
        "                          amount optional, maps itself (gen's CSV, the shared\n"
        "                          scorer's events format).\n"
        "  --delimiter C           one character (default ','), tab, or ws (runs of blanks)\n"
        "  --no-header             the first line is data; columns are indexes\n"
        "  --strict                fail on the first bad row instead of counting it\n"
        "\n"
        "Bad rows (wrong column count, unparsable time or number, empty user_id, or one that\n"
        "is not UTF-8 or holds a NUL byte) are skipped, counted by reason and the first 10\n"
        "listed with their line numbers. A file that yields no event at all, a truncated\n"
        ".gz, or a quoted field not closed before the end of the file (or within 100 lines)\n"
        "fail with exit status 1 and write nothing. OUTPUT may be - (stdout); it must not\n"
        "be INPUT. Exit status: 0 ok, 1 runtime failure, 2 usage error.\n",
        out);
}

/* Writes the loaded events to out_path (an Avro container, replaced as a whole) and prints
 * the summary. 0, or 1 with the error printed (nothing is left at out_path). */
static int write_events(const imp_result_t *res, const char *in_path, const char *out_path)
{
    char err[1024];
    int status = 1, opened = 0;
    ev_file_writer_t *w = ev_file_writer_open(out_path, err, sizeof(err));
    if (!w)
        goto done; /* the open error names the path already */
    opened = 1;
    ev_event_t ev;
    for (size_t i = 0; i < res->n_events; i++) {
        imp_result_get(res, i, &ev);
        if (ev_file_writer_append(w, &ev, err, sizeof(err)) < 0)
            goto done;
    }
    int crc = ev_file_writer_close(w, err, sizeof(err));
    w = NULL;
    if (crc < 0)
        goto done;
    imp_result_print_summary(res, in_path, stdout);
    printf("written:      %zu events to %s\n", res->n_events, out_path);
    status = 0;

done:
    if (status != 0)
        fprintf(stderr, "churnstream import: %s%s%s\n", opened ? out_path : "", opened ? ": " : "",
                err);
    if (w) {
        ev_file_writer_abort(w);
    }
    return status;
}

int cmd_import(cfg_t *cfg, int argc, char **argv)
{
    enum { O_PRESET = 256, O_DELIM, O_NO_HEADER, O_MAP, O_STRICT, O_HELP };
    static const struct option longopts[] = {
        {"preset", required_argument, NULL, O_PRESET},
        {"delimiter", required_argument, NULL, O_DELIM},
        {"no-header", no_argument, NULL, O_NO_HEADER},
        {"map", required_argument, NULL, O_MAP},
        {"strict", no_argument, NULL, O_STRICT},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    (void)cfg;
    const char *preset = NULL, *map = NULL, *delim = NULL;
    int no_header = 0, strict = 0, c;
    optind = 0; /* glibc: full re-initialization */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (c) {
        case O_PRESET:
            preset = optarg;
            break;
        case O_DELIM:
            delim = optarg;
            break;
        case O_NO_HEADER:
            no_header = 1;
            break;
        case O_MAP:
            map = optarg;
            break;
        case O_STRICT:
            strict = 1;
            break;
        case O_HELP:
        case 'h':
            import_usage(stdout);
            return 0;
        default:
            cli_bad_option("import", argv[optind - 1], NULL);
            return 2;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "churnstream import: expected INPUT and OUTPUT.avro (see --help)\n");
        return 2;
    }
    const char *in_path = argv[optind], *out_path = argv[optind + 1];
    /* The output is replaced as a whole at the end: written over the input it would leave
     * the input destroyed (and, read through a symlink or a second name, half-read). */
    if (strcmp(in_path, out_path) == 0 || of_same_file(in_path, out_path)) {
        fprintf(stderr,
                "churnstream import: OUTPUT %s is the INPUT file; choose another output path\n",
                out_path);
        return 2;
    }
    char err[1024], auto_map[256];
    if (!preset && !map) { /* churnstream's own layouts, by header names */
        if (no_header ||
            imp_auto_map(in_path, delim, auto_map, sizeof(auto_map), err, sizeof(err)) != 0) {
            fprintf(stderr, "churnstream import: %s\n",
                    no_header ? "give --preset online-retail or --map SPEC (see --help)" : err);
            return 2;
        }
        map = auto_map;
    }

    imp_spec_t spec;
    if (imp_spec_parse(&spec, preset, map, delim, no_header, err, sizeof(err)) < 0) {
        fprintf(stderr, "churnstream import: %s\n", err);
        return 2;
    }
    spec.strict = strict;

    imp_result_t res;
    if (imp_load(&spec, in_path, &res, err, sizeof(err)) < 0) {
        fprintf(stderr, "churnstream import: %s\n", err);
        return 1;
    }
    if (res.n_events == 0) {
        /* An empty output is never what was asked for: every row was rejected (or the file
         * held none). Say why and write nothing. */
        imp_result_print_summary(&res, in_path, stderr);
        fprintf(stderr,
                "churnstream import: %s: no events: %lld rows read, every one rejected; "
                "nothing written to %s\n",
                in_path, (long long)res.rows_read, out_path);
        imp_result_free(&res);
        return 1;
    }

    int status = write_events(&res, in_path, out_path);
    imp_result_free(&res);
    return status;
}
