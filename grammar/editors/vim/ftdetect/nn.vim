" .nn files are nnc models (grammar/editors/README.md).
autocmd BufRead,BufNewFile *.nn setfiletype nn
