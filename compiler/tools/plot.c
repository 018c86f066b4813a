/* plot.c — drawing the learning curves with cairo (see plot.h).
 *
 * Why cairo and not PLplot: cairo is one small library (libcairo2-dev) that writes both PNG and SVG
 * from the same drawing calls, with antialiased lines and real fonts through fontconfig; PLplot's
 * cairo output needs a separately packaged driver module found at run time, and its axis
 * conventions would still need the legend and layout written here. The figure is simple enough
 * that the axes, ticks and legend below are most of the work either way. */
#include "plot.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { PANEL_W = 440, PANEL_H = 300, PANELS_PER_ROW = 3, TITLE_H = 34, LEGEND_ROW_H = 20, LEGEND_ENTRY_W = 290 };
enum { MARGIN_L = 64, MARGIN_R = 16, MARGIN_T = 30, MARGIN_B = 44 };
enum { PNG_SCALE = 2 }; /* PNG pixels per SVG unit */

/* Matplotlib's "tab10", so neighbouring series are easy to tell apart. */
static const double palette[10][3] = {
    {0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173}, {0.839, 0.153, 0.157},
    {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294}, {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498},
    {0.737, 0.741, 0.133}, {0.090, 0.745, 0.812},
};

static void set_series_colour(cairo_t *cr, int series) {
    const double *c = palette[series % 10];
    cairo_set_source_rgb(cr, c[0], c[1], c[2]);
    /* Past ten series the colours repeat, so the line style changes instead. */
    double dash[] = {6.0, 3.0};
    cairo_set_dash(cr, dash, (series / 10) % 2 ? 2 : 0, 0);
}

/* 1, 2 or 5 times a power of ten, close to `raw`. */
static double nice_step(double raw) {
    double p = pow(10.0, floor(log10(raw)));
    double f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static void text_at(cairo_t *cr, double x, double y, const char *s, double align_x, double align_y) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_move_to(cr, x - e.width * align_x - e.x_bearing, y + e.height * align_y - (e.height + e.y_bearing));
    cairo_show_text(cr, s);
}

static void draw_panel(cairo_t *cr, const PlotPanel *panel, double ox, double oy) {
    double x0 = ox + MARGIN_L, x1 = ox + PANEL_W - MARGIN_R, y0 = oy + MARGIN_T, y1 = oy + PANEL_H - MARGIN_B;
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int l = 0; l < panel->line_count; l++)
        for (int i = 0; i < panel->lines[l].count; i++) {
            const PlotLine *line = &panel->lines[l];
            double x = line->x[i], y = line->y[i];
            if (!isfinite(y)) continue;
            xmin = fmin(xmin, x), xmax = fmax(xmax, x), ymin = fmin(ymin, y), ymax = fmax(ymax, y);
            if (line->low && isfinite(line->low[i])) ymin = fmin(ymin, line->low[i]);
            if (line->high && isfinite(line->high[i])) ymax = fmax(ymax, line->high[i]);
        }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_font_size(cr, 13);
    text_at(cr, (x0 + x1) / 2, oy + 8, panel->title, 0.5, 1);
    if (!isfinite(xmin)) {
        cairo_set_font_size(cr, 11);
        text_at(cr, (x0 + x1) / 2, (y0 + y1) / 2, "no data", 0.5, 0.5);
        return;
    }
    if (xmax - xmin < 1) xmin -= 0.5, xmax += 0.5;
    double xpad = 0.03 * (xmax - xmin); /* the first and last points stay off the frame */
    xmin -= xpad, xmax += xpad;
    double pad = ymax > ymin ? 0.05 * (ymax - ymin) : (fabs(ymax) > 0 ? 0.05 * fabs(ymax) : 0.5);
    ymin -= pad, ymax += pad;
    double ystep = nice_step((ymax - ymin) / 5), xstep = fmax(1, round(nice_step((xmax - xmin) / 6)));
    int decimals = ystep >= 1 ? 0 : (int)ceil(-log10(ystep) - 1e-9);
#define PX(x) (x0 + ((x) - xmin) / (xmax - xmin) * (x1 - x0))
#define PY(y) (y1 - ((y) - ymin) / (ymax - ymin) * (y1 - y0))
    /* grid and tick labels */
    cairo_set_font_size(cr, 10);
    cairo_set_line_width(cr, 1);
    char label[64];
    for (double y = ceil(ymin / ystep) * ystep; y <= ymax + 1e-9 * ystep; y += ystep) {
        cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
        cairo_move_to(cr, x0, round(PY(y)) + 0.5);
        cairo_line_to(cr, x1, round(PY(y)) + 0.5);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        snprintf(label, sizeof label, "%.*f", decimals, fabs(y) < ystep * 1e-6 ? 0.0 : y);
        text_at(cr, x0 - 6, PY(y), label, 1, 0.5);
    }
    for (double x = ceil(xmin / xstep) * xstep; x <= xmax + 1e-9; x += xstep) {
        cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
        cairo_move_to(cr, round(PX(x)) + 0.5, y0);
        cairo_line_to(cr, round(PX(x)) + 0.5, y1);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        snprintf(label, sizeof label, "%.0f", x + 0.0); /* + 0.0: the first tick may be -0 */
        text_at(cr, PX(x), y1 + 6, label, 0.5, 1);
    }
    cairo_set_font_size(cr, 11);
    text_at(cr, (x0 + x1) / 2, oy + PANEL_H - 6, "epoch", 0.5, 0);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_rectangle(cr, x0 + 0.5, y0 + 0.5, x1 - x0, y1 - y0);
    cairo_stroke(cr);
    /* the curves, clipped to the plot area */
    cairo_save(cr);
    cairo_rectangle(cr, x0, y0, x1 - x0, y1 - y0);
    cairo_clip(cr);
    /* the seeds' spread (min to max) under the lines: a translucent band per run of points */
    for (int l = 0; l < panel->line_count; l++) {
        const PlotLine *line = &panel->lines[l];
        if (!line->low || !line->high) continue;
        const double *c = palette[line->series % 10];
        cairo_set_source_rgba(cr, c[0], c[1], c[2], 0.18);
        for (int i = 0; i < line->count;) {
            int end = i;
            while (end < line->count && isfinite(line->low[end]) && isfinite(line->high[end])) end++;
            if (end - i >= 2) {
                for (int k = i; k < end; k++) cairo_line_to(cr, PX(line->x[k]), PY(line->high[k]));
                for (int k = end - 1; k >= i; k--) cairo_line_to(cr, PX(line->x[k]), PY(line->low[k]));
                cairo_close_path(cr);
                cairo_fill(cr);
            }
            cairo_new_path(cr);
            i = end > i ? end : i + 1;
        }
    }
    cairo_set_line_width(cr, 2);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    for (int l = 0; l < panel->line_count; l++) {
        const PlotLine *line = &panel->lines[l];
        set_series_colour(cr, line->series);
        bool drawing = false;
        for (int i = 0; i < line->count; i++) {
            if (!isfinite(line->y[i])) {
                drawing = false;
                continue;
            }
            if (drawing) cairo_line_to(cr, PX(line->x[i]), PY(line->y[i]));
            else cairo_move_to(cr, PX(line->x[i]), PY(line->y[i]));
            drawing = true;
        }
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        for (int i = 0; i < line->count; i++) {
            if (!isfinite(line->y[i])) continue;
            cairo_arc(cr, PX(line->x[i]), PY(line->y[i]), 3, 0, 2 * M_PI);
            cairo_fill(cr);
        }
    }
    cairo_restore(cr);
#undef PX
#undef PY
}

/* A legend column's width: at least LEGEND_ENTRY_W, wide enough for the longest label (its line,
 * the text in the legend's font, a gap), so that no label runs into the next column or off the
 * figure. */
static double legend_entry_width(const PlotFigure *f) {
    cairo_surface_t *probe = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1);
    cairo_t *cr = cairo_create(probe);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 12);
    double widest = 0;
    for (int s = 0; s < f->label_count; s++) {
        cairo_text_extents_t e;
        cairo_text_extents(cr, f->labels[s], &e);
        if (e.x_advance > widest) widest = e.x_advance;
    }
    cairo_destroy(cr);
    cairo_surface_destroy(probe);
    double w = 36 + widest + 24;
    return w > LEGEND_ENTRY_W ? w : LEGEND_ENTRY_W;
}

/* The figure's size and legend grid, worked out once for both surfaces (PNG and SVG). */
typedef struct FigureLayout {
    int width, height;
    int legend_cols;
    double legend_entry_w;
} FigureLayout;

static FigureLayout figure_layout(const PlotFigure *f) {
    FigureLayout l;
    int cols = f->panel_count < PANELS_PER_ROW ? (f->panel_count ? f->panel_count : 1) : PANELS_PER_ROW;
    int rows = (f->panel_count + cols - 1) / cols;
    l.width = cols * PANEL_W;
    l.legend_entry_w = legend_entry_width(f);
    int fit = (int)((l.width - 20) / l.legend_entry_w);
    l.legend_cols = fit > 0 ? fit : 1;
    int legend_rows = (f->label_count + l.legend_cols - 1) / l.legend_cols;
    l.height = TITLE_H + rows * PANEL_H + legend_rows * LEGEND_ROW_H + 16;
    return l;
}

static void draw_figure(cairo_t *cr, const PlotFigure *f, const FigureLayout *l) {
    int width = l->width, legend_cols = l->legend_cols;
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_font_size(cr, 15);
    text_at(cr, width / 2.0, 10, f->title, 0.5, 1);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    int cols = width / PANEL_W;
    for (int p = 0; p < f->panel_count; p++)
        draw_panel(cr, &f->panels[p], (p % cols) * PANEL_W, TITLE_H + (p / cols) * PANEL_H);
    int rows = (f->panel_count + cols - 1) / cols;
    double ly = TITLE_H + rows * PANEL_H + 8;
    cairo_set_font_size(cr, 12);
    double entry_w = l->legend_entry_w;
    for (int s = 0; s < f->label_count; s++) {
        double x = 20 + (s % legend_cols) * entry_w, y = ly + (s / legend_cols) * LEGEND_ROW_H + LEGEND_ROW_H / 2.0;
        set_series_colour(cr, s);
        cairo_set_line_width(cr, 2.5);
        cairo_move_to(cr, x, y);
        cairo_line_to(cr, x + 28, y);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        cairo_set_source_rgb(cr, 0, 0, 0);
        text_at(cr, x + 36, y, f->labels[s], 0, 0.5);
    }
}

static bool finish(cairo_surface_t *surface, cairo_status_t status, const char *tmp, const char *path) {
    if (status == CAIRO_STATUS_SUCCESS) status = cairo_surface_status(surface);
    cairo_surface_destroy(surface);
    if (status != CAIRO_STATUS_SUCCESS) {
        fprintf(stderr, "nnc compare: error: cannot write '%s': %s\n", path, cairo_status_to_string(status));
        remove(tmp);
        return false;
    }
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "nnc compare: error: cannot write '%s': %s\n", path, strerror(errno));
        remove(tmp);
        return false;
    }
    return true;
}

bool plot_write(const PlotFigure *figure, const char *path_stem) {
    FigureLayout layout = figure_layout(figure);
    int width = layout.width, height = layout.height;
    char path[4096], tmp[4160];

    snprintf(path, sizeof path, "%s.png", path_stem);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    /* Twice the SVG's size, drawn at scale 2: sharp on high-density screens. */
    cairo_surface_t *image = cairo_image_surface_create(CAIRO_FORMAT_RGB24, PNG_SCALE * width, PNG_SCALE * height);
    cairo_t *cr = cairo_create(image);
    cairo_scale(cr, PNG_SCALE, PNG_SCALE);
    draw_figure(cr, figure, &layout);
    cairo_status_t status = cairo_status(cr);
    cairo_destroy(cr);
    if (status == CAIRO_STATUS_SUCCESS) status = cairo_surface_write_to_png(image, tmp);
    if (!finish(image, status, tmp, path)) return false;

    snprintf(path, sizeof path, "%s.svg", path_stem);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    cairo_surface_t *svg = cairo_svg_surface_create(tmp, width, height);
    cr = cairo_create(svg);
    draw_figure(cr, figure, &layout);
    status = cairo_status(cr);
    cairo_destroy(cr);
    cairo_surface_finish(svg); /* writes the rest of the file */
    bool ok = finish(svg, status, tmp, path);
    /* Drop cairo's font and glyph caches, so leak checkers (ASan builds) see a clean exit. */
    cairo_debug_reset_static_data();
    return ok;
}
