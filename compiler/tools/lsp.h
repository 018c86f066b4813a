/* lsp.h — `nnc lsp`: a Language Server Protocol server over stdin/stdout (JSON-RPC 2.0 with
 * Content-Length framing, cJSON for the JSON). Diagnostics on open and every change, hover,
 * go to definition, completion, document symbols and formatting, for any number of open
 * documents. The analysis is the compiler's own front end (lsp_index.c). */
#ifndef NNC_LSP_H
#define NNC_LSP_H

/* argv[1] is "lsp". Exit status 0 after shutdown + exit, 1 when the input ended otherwise. */
int lsp_main(int argc, char **argv);

#endif
