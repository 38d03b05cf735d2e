/* SVG and HTML primitives of the backtest report: axes with 1-2-5 or whole-day ticks,
 * lines, dots, bars, legends, escaping and UTC dates. Coordinates are printed with one
 * decimal so that the same inputs always give the same bytes. */
#include "report_svg.h"

#include <math.h>
#include <string.h>

#include "report.h"

#define DAY_MS   86400000.0
#define MAX_TICK 24 /* tick labels per axis, a bound for pathological ranges */

static const char *const palette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1",
                                      "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#7f7f7f"};

const char *rs_color(size_t i)
{
    return palette[i % (sizeof(palette) / sizeof(palette[0]))];
}

/* ---- text ---- */

static const char *entity(char ch)
{
    switch (ch) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&#39;";
    default:
        return NULL;
    }
}

size_t report_html_escape(const char *in, char *out, size_t cap)
{
    size_t need = 0, used = 0;
    int room = cap > 0; /* stays 1 while everything so far fitted (no entity is ever cut) */
    for (const char *p = in ? in : ""; *p; p++) {
        const char *e = entity(*p);
        size_t len = e ? strlen(e) : 1;
        need += len;
        if (room && used + len < cap) {
            if (e)
                memcpy(out + used, e, len);
            else
                out[used] = *p;
            used += len;
        } else {
            room = 0;
        }
    }
    if (cap > 0)
        out[used] = '\0';
    return need;
}

void rs_text(FILE *f, const char *s)
{
    for (const char *p = s ? s : ""; *p; p++) {
        const char *e = entity(*p);
        if (e)
            fputs(e, f);
        else
            fputc(*p, f);
    }
}

void rs_num(FILE *f, double v, int decimals)
{
    if (!isfinite(v)) {
        fputs("n/a", f);
        return;
    }
    if (v == 0)
        v = 0; /* no "-0.0000" */
    fprintf(f, "%.*f", decimals, v);
}

void rs_date(int64_t t_ms, char *out, size_t cap)
{
    /* Civil date from days since 1970-01-01 (H. Hinnant's algorithm): no time zone, no
     * locale, valid for every int64 day count the report can see. */
    int64_t z = t_ms >= 0 ? t_ms / 86400000 : -((-(t_ms + 1)) / 86400000) - 1;
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);
    snprintf(out, cap, "%04lld-%02lld-%02lld", (long long)y, (long long)m, (long long)d);
}

/* ---- charts ---- */

static double px(const rs_chart_t *c, double x)
{
    double w = c->width - c->ml - c->mr;
    return c->ml + (x - c->x.lo) / (c->x.hi - c->x.lo) * w;
}

static double py(const rs_chart_t *c, double y)
{
    double h = c->height - c->mt - c->mb;
    return c->height - c->mb - (y - c->y.lo) / (c->y.hi - c->y.lo) * h;
}

static void fix_range(rs_axis_t *a)
{
    if (!isfinite(a->lo) || !isfinite(a->hi) || a->hi < a->lo) {
        a->lo = 0;
        a->hi = 1;
    }
    if (a->hi == a->lo) {
        double pad = a->dates ? DAY_MS : (a->lo == 0 ? 0.5 : fabs(a->lo) * 0.1);
        a->lo -= pad;
        a->hi += pad;
    }
}

void rs_chart_init(rs_chart_t *c, double xlo, double xhi, int xdates, const char *xtitle,
                   double ylo, double yhi, const char *ytitle)
{
    *c = (rs_chart_t){.width = 640, .height = 300, .ml = 62, .mr = 18, .mt = 14, .mb = 46};
    c->x = (rs_axis_t){xlo, xhi, xtitle, xdates};
    c->y = (rs_axis_t){ylo, yhi, ytitle, 0};
    fix_range(&c->x);
    fix_range(&c->y);
}

/* Tick values of an axis into v[MAX_TICK]; returns the count and the label decimals. */
static size_t axis_ticks(const rs_axis_t *a, double *v, int *decimals)
{
    size_t n = 0;
    *decimals = 0;
    if (a->dates) {
        /* Whole days; past a week, multiples of 7 days since the epoch, so weekly ticks of
         * the replay fall on labelled positions. */
        static const double steps[] = {1, 2, 7, 14, 28, 56, 91, 182, 364};
        double lo = a->lo / DAY_MS, hi = a->hi / DAY_MS, step = 364;
        for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
            if ((hi - lo) / steps[i] <= 6) {
                step = steps[i];
                break;
            }
        while ((hi - lo) / step > 6)
            step *= 2;
        for (double d = ceil(lo / step) * step; d <= hi && n < MAX_TICK; d += step)
            v[n++] = d * DAY_MS;
        return n;
    }
    double raw = (a->hi - a->lo) / 5, mag = pow(10, floor(log10(raw))), norm = raw / mag;
    double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
    *decimals = step >= 1 ? 0 : step < 1e-9 ? 9 : (int)ceil(-log10(step) - 1e-9);
    for (double t = ceil(a->lo / step - 1e-9); t * step <= a->hi + step * 1e-9 && n < MAX_TICK;
         t += 1)
        v[n++] = t * step;
    return n;
}

void rs_begin(FILE *f, const rs_chart_t *c, const char *title)
{
    fprintf(f, "<svg viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\">\n<title>",
            c->width, c->height, c->width, c->height);
    rs_text(f, title);
    fputs("</title>\n", f);
    double x0 = c->ml, x1 = c->width - c->mr, y0 = c->height - c->mb, y1 = c->mt;
    double v[MAX_TICK];
    int dec;
    size_t n = axis_ticks(&c->y, v, &dec);
    for (size_t i = 0; i < n; i++) {
        double y = py(c, v[i]);
        fprintf(f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", x0, y,
                x1, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", x0 - 5, y + 4);
        rs_num(f, v[i], dec);
        fputs("</text>\n", f);
    }
    n = axis_ticks(&c->x, v, &dec);
    for (size_t i = 0; i < n; i++) {
        double x = px(c, v[i]);
        fprintf(f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", x, y0,
                x, y1);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", x, y0 + 16);
        if (c->x.dates) {
            char d[24];
            rs_date((int64_t)llround(v[i]), d, sizeof(d));
            fputs(d, f);
        } else {
            rs_num(f, v[i], dec);
        }
        fputs("</text>\n", f);
    }
    fprintf(f, "<rect class=\"frame\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>\n", x0,
            y1, x1 - x0, y0 - y1);
    if (c->x.title) {
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", (x0 + x1) / 2,
                c->height - 8);
        rs_text(f, c->x.title);
        fputs("</text>\n", f);
    }
    if (c->y.title) {
        fprintf(f, "<text transform=\"translate(14 %.1f) rotate(-90)\" text-anchor=\"middle\">",
                (y0 + y1) / 2);
        rs_text(f, c->y.title);
        fputs("</text>\n", f);
    }
}

void rs_end(FILE *f)
{
    fputs("</svg>\n", f);
}

void rs_line(FILE *f, const rs_chart_t *c, const double *x, const double *y, size_t n,
             const char *color, int dashed)
{
    for (size_t i = 0; i < n;) {
        if (!isfinite(y[i]) || !isfinite(x[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && isfinite(y[j]) && isfinite(x[j]))
            j++;
        if (j - i == 1) {
            rs_dots(f, c, x + i, y + i, 1, color, 2.5);
        } else {
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\"%s points=\"",
                    color, dashed ? " stroke-dasharray=\"5 4\"" : "");
            for (size_t k = i; k < j; k++)
                fprintf(f, "%s%.1f,%.1f", k > i ? " " : "", px(c, x[k]), py(c, y[k]));
            fputs("\"/>\n", f);
        }
        i = j;
    }
}

void rs_dots(FILE *f, const rs_chart_t *c, const double *x, const double *y, size_t n,
             const char *color, double r)
{
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(y[i]))
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n", px(c, x[i]),
                    py(c, y[i]), r, color);
}

void rs_vbars(FILE *f, const rs_chart_t *c, const double *x, const double *y, size_t n,
              const char *color, double width_px)
{
    double base = py(c, c->y.lo > 0 ? c->y.lo : 0);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i]))
            continue;
        double top = py(c, y[i]);
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
                px(c, x[i]) - width_px / 2, top < base ? top : base, width_px, fabs(base - top),
                color);
    }
}

void rs_hbars(FILE *f, const char *title, const char *const *labels, const double *values, size_t n,
              int decimals, const char *pos_color, const char *neg_color)
{
    const int width = 640, label_w = 210, value_w = 70, row = 18, top = 8;
    int height = top * 2 + (int)n * row;
    double vmax = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(values[i]) && fabs(values[i]) > vmax)
            vmax = fabs(values[i]);
    double half = (width - label_w - value_w) / 2.0, zero = label_w + half;
    fprintf(f, "<svg viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\">\n<title>",
            width, height, width, height);
    rs_text(f, title);
    fputs("</title>\n", f);
    for (size_t i = 0; i < n; i++) {
        double y = top + (double)i * row, v = isfinite(values[i]) ? values[i] : 0;
        double len = vmax > 0 ? fabs(v) / vmax * (half - 4) : 0;
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", label_w - 6, y + 13);
        rs_text(f, labels[i]);
        fputs("</text>", f);
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>",
                v > 0 ? zero : zero - len, y + 3, len, row - 5, v > 0 ? pos_color : neg_color);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", width - 4, y + 13);
        rs_num(f, values[i], decimals);
        fputs("</text>\n", f);
    }
    fprintf(f, "<line class=\"axis\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>\n", zero, top,
            zero, height - top);
    fputs("</svg>\n", f);
}

void rs_legend(FILE *f, const char *const *names, const char *const *colors, size_t n)
{
    fputs("<div class=\"legend\">", f);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "<span class=\"key\"><span class=\"sw\" style=\"background:%s\"></span>",
                colors[i]);
        rs_text(f, names[i]);
        fputs("</span>", f);
    }
    fputs("</div>\n", f);
}
