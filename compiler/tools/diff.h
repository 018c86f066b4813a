/* diff.h — the tool that shows what changed between two designs, layer by layer:
 *   nnc diff A.nn B.nn */
#ifndef NNC_DIFF_H
#define NNC_DIFF_H

/* argv[1] is "diff". Exit status 0, or 1 (bad usage, a design that does not compile). */
int diff_main(int argc, char **argv);

#endif
