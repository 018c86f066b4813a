/* fortune.c — which fortunes category a text is from, with text_bag's library and its raw-text
 * entry point (see README.md, "Deployment"): one text per line of standard input, one line out
 * per text: the category and the four probabilities.
 *
 *   (cd examples && ../text_bag train --save ../bag.safetensors)
 *   make -C examples/deploy BAG_WEIGHTS=$PWD/bag.safetensors NNC=$PWD/build/nnc fortune
 *   fortune -l 20 | examples/deploy/fortune
 *
 * The library tokenizes as training did (the words, the stored vocabulary, the first 64 words);
 * the program only reads lines. */
#include "text_bag.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the label ids of examples/data/make_fortunes.py */
static const char *const categories[text_bag_CLASSES] = {"politics", "science", "songs-poems", "work"};

int main(void) {
    void *workspace = malloc(text_bag_text_workspace_size(1));
    if (!workspace) return 1;
    char line[1 << 16];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        const char *texts[1] = {line};
        float p[text_bag_OUTPUT_SIZE];
        if (text_bag_predict_text(texts, 1, p, workspace) != text_bag_OK) return 1;
        int best = 0;
        for (int c = 1; c < text_bag_CLASSES; c++)
            if (p[c] > p[best]) best = c;
        printf("%-12s", categories[best]);
        for (int c = 0; c < text_bag_CLASSES; c++) printf(" %.4f", p[c]);
        printf("\n");
    }
    free(workspace);
    return 0;
}
