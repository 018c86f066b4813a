/* plot.h — learning-curve figures for `nnc compare`, drawn with cairo: one panel per quantity
 * (validation loss, each validation metric) against epoch, one line per series, a shared legend.
 * The same drawing code renders to a PNG image surface (at twice the size, for high-density
 * screens) and to an SVG surface. Cairo's SVG surface writes text as glyph outlines (<symbol> and
 * <use>), not <text> elements: it has no option to keep text, so the SVG's labels are shapes. */
#ifndef NNC_PLOT_H
#define NNC_PLOT_H

#include <stdbool.h>

typedef struct PlotLine {
    int series;      /* index into the figure's labels: the colour and the legend entry */
    int count;
    const double *x; /* epochs */
    const double *y; /* NaN = no point (the line breaks there) */
    const double *low, *high; /* the spread at each x (over seeds: min and max), drawn as a band; NULL: none */
} PlotLine;

typedef struct PlotPanel {
    const char *title; /* "validation loss" */
    int line_count;
    const PlotLine *lines;
} PlotPanel;

typedef struct PlotFigure {
    const char *title;
    int panel_count;
    const PlotPanel *panels;
    int label_count;
    const char *const *labels; /* one per series */
} PlotFigure;

/* Writes PATH_STEM.png and PATH_STEM.svg, each through a temporary file and a rename. Returns
 * true, or false after an "nnc compare: error:" message. */
bool plot_write(const PlotFigure *figure, const char *path_stem);

#endif
