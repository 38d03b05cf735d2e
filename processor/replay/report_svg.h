/* SVG and HTML primitives of the backtest report (report.c): charts with axes, ticks and
 * labels, polylines, dots, bars, escaped text and UTC dates. Internal to the report module;
 * everything writes to a FILE* and keeps the output a pure function of its arguments. */
#ifndef CS_REPORT_SVG_H
#define CS_REPORT_SVG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* One axis. dates = 1: values are Unix epoch ms and ticks are labelled YYYY-MM-DD (UTC) on
 * whole days; otherwise 1-2-5 ticks with as many decimals as the step needs. */
typedef struct rs_axis_s {
    double lo, hi;
    const char *title; /* static text, escaped when written; NULL = none */
    int dates;
} rs_axis_t;

/* A plot area inside a width x height SVG, with margins for the axes. */
typedef struct rs_chart_s {
    int width, height;
    int ml, mr, mt, mb; /* margins: left, right, top, bottom (px) */
    rs_axis_t x, y;
} rs_chart_t;

/* Default size and margins for the given ranges. A degenerate range (lo == hi, e.g. one
 * tick) is widened (one day each side for dates, 0.5 or 10% otherwise) so that a single
 * point still sits inside the frame; non-finite bounds become [0, 1]. */
void rs_chart_init(rs_chart_t *c, double xlo, double xhi, int xdates, const char *xtitle,
                   double ylo, double yhi, const char *ytitle);
/* Opens the <svg> with an accessible <title>, the frame, grid lines, tick labels and axis
 * titles. Close with rs_end. */
void rs_begin(FILE *f, const rs_chart_t *c, const char *title);
void rs_end(FILE *f);
/* Polyline through (x[i], y[i]); a NaN y breaks the line, and a point with no neighbour
 * on either side is drawn as a dot so that one-tick series stay visible. */
void rs_line(FILE *f, const rs_chart_t *c, const double *x, const double *y, size_t n,
             const char *color, int dashed);
/* Dots of radius r px; NaN points are skipped. */
void rs_dots(FILE *f, const rs_chart_t *c, const double *x, const double *y, size_t n,
             const char *color, double r);
/* Vertical bars from 0 to y[i] centred on x[i], width_px wide. */
void rs_vbars(FILE *f, const rs_chart_t *c, const double *x, const double *y, size_t n,
              const char *color, double width_px);
/* A whole SVG of horizontal bars around a zero line: labels[i] on the left, values[i] as a
 * bar (pos_color when > 0, neg_color otherwise) with its value printed at `decimals`. */
void rs_hbars(FILE *f, const char *title, const char *const *labels, const double *values, size_t n,
              int decimals, const char *pos_color, const char *neg_color);
/* An HTML legend (<div class="legend">) of n colour swatches with escaped names. */
void rs_legend(FILE *f, const char *const *names, const char *const *colors, size_t n);

/* Writes s with &, <, >, " and ' as HTML entities. */
void rs_text(FILE *f, const char *s);
/* v with `decimals` fixed decimals, or "n/a" when v is not finite. */
void rs_num(FILE *f, double v, int decimals);
/* YYYY-MM-DD of the UTC day holding t_ms (any int64, floor division). out >= 11 bytes
 * for years 0..9999 (wider years take more; 24 bytes always suffice). */
void rs_date(int64_t t_ms, char *out, size_t cap);
/* Colour i of a 10-colour palette (cycles). Static storage. */
const char *rs_color(size_t i);

#endif
