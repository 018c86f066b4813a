/* main.c — the entry point of every model executable.
 *
 * nnc links `model.o libnnrt.a`: the generated object defines nnrt_model, and this file (pulled
 * out of the archive because nothing else defines main) hands it to the runtime's command line.
 * Tests link their own main instead, so this object and its reference to nnrt_model stay out.
 */
#include "nnrt.h"

int main(int argc, char **argv) { return nnrt_main(&nnrt_model, argc, argv); }
