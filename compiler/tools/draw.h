/* draw.h — `nnc draw`: the network as a diagram, laid out by Graphviz (dot).
 *
 *   nnc draw FILE.nn [-o OUT] [--emit=svg|dot] [-D NAME=VALUE]...
 *
 * One box per layer (its name, op, output shape and parameter count), the input and the target,
 * the loss; each block instance a cluster (nested as the blocks are); residual edges (an input
 * that also reaches the node through another path) dashed. SVG by default, or the Graphviz
 * source with --emit=dot. */
#ifndef NNC_DRAW_H
#define NNC_DRAW_H

#include <stdbool.h>

#include "sema.h"

/* Analyzes PATH with the overrides and writes its diagram to OUT (atomically; "-": stdout), SVG
 * or dot. Diagnostics go to stderr, warnings as WARNINGS says. Returns 0, 1 (the design does not
 * compile, too big to draw, a write failed). */
int draw_file(const char *path, Define *defines, int define_count, DiagWarnings warnings, const char *out, bool dot);

/* argv[1] is "draw". Exit status 0 or 1. */
int draw_main(int argc, char **argv);

#endif
