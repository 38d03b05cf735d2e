/* The backtest's HTML report: one self-contained file (inline SVG, no scripts or fonts from
 * the network) with ROC, calibration, AUC and log-loss over time, segment sizes and churn
 * rates over time, and the model's weights by feature. */
#ifndef CS_REPORT_H
#define CS_REPORT_H

#include <stddef.h>

#include "model.h"
#include "replay.h"

/* Writes the report for a finished replay. rows[0..n) are every labelled snapshot in label
 * order (in_window says which count in the metrics). Borrows everything. Returns 0, or -1
 * with errstr set when the file cannot be written. */
int report_write(const char *path, const rp_summary_t *sum, const rp_row_t *rows, size_t n,
                 const model_t *model, char *errstr, size_t errstr_size);

/* HTML-escapes in (&, <, >, ", ' as entities) into out[cap], always NUL-terminated when
 * cap > 0 and never cutting an entity in half. Returns the length of the whole escaped
 * text (without the NUL), as snprintf does: out was truncated when the result >= cap. */
size_t report_html_escape(const char *in, char *out, size_t cap);

#endif
