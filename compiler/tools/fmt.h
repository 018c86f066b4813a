/* fmt.h — `nnc fmt`: the one canonical layout of .nn files.
 *
 *   nnc fmt FILE.nn...            rewrite each file in place (atomically; untouched when formatted)
 *   nnc fmt FILE.nn --check       exit 1 and print a unified diff when a file is not formatted
 *   nnc fmt FILE.nn -o OUT        write the formatted text to OUT ('-': stdout)
 *
 * Only whitespace changes: the tokens, their order and every comment stay, so the formatted file
 * means exactly what the original did. The layout: two spaces per brace level; one space around
 * `->`, `=` (not in keyword arguments), `:` and the arithmetic operators, after commas, none inside
 * brackets; the `=` of consecutive assignments (train keys, params) aligned, as are the names of
 * consecutive input/target declarations and of loss/metric statements; a line starting with `->`
 * aligned under the statement's first `->`, a line inside brackets under the bracket's first
 * argument; trailing comments two spaces after the code; blank lines kept, at most one in a row.
 * Line breaks are the author's: fmt never joins or splits lines. */
#ifndef NNC_FMT_H
#define NNC_FMT_H

#include "arena.h"

/* The canonical layout of TEXT, in the arena; NULL when TEXT is not made of .nn tokens (an
 * unterminated string: the parser reports those). The caller checks that TEXT parses. */
const char *fmt_source(Arena *arena, const char *text, int length);

/* argv[1] is "fmt". Exit status 0, 1 (a file does not parse, is not formatted under --check,
 * bad usage), 2 (an internal failure: the formatted text would change the tokens). */
int fmt_main(int argc, char **argv);

#endif
