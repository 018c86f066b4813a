" Vim syntax file for nnc's .nn files (grammar/REFERENCE.md).
" Install: copy grammar/editors/vim/ into ~/.vim (or ~/.config/nvim), or add it to 'runtimepath';
" ftdetect/nn.vim sets the filetype for *.nn. The op list follows the compiler's op table
" (tests/lsp/lsp_test.py editors checks that every op of `nnc lsp`'s completion is here).
if exists("b:current_syntax")
  finish
endif

syn keyword nnKeyword model param input target def return loss metric train output
syn keyword nnType float int class
syn keyword nnBoolean true false
syn keyword nnOp dense conv2d conv1d maxpool avgpool global_avgpool leaky_relu dropout gelu silu softmax log_softmax relu tanh sigmoid flatten reshape concat mean sum transpose layernorm batchnorm embedding position_embedding lstm gru attention cross_entropy mse bce accuracy mae rmse
syn keyword nnSetting idx csv text tokens split sgd adam adamw rmsprop constant step cosine
syn match nnOperator "[-+*/=:]"
syn match nnArrow "->"
syn match nnNumber "\<\d\+\(\.\d*\)\=\([eE][-+]\=\d\+\)\=\>"
syn match nnNumber "\.\d\+\([eE][-+]\=\d\+\)\=\>"
" keyword arguments: a name after '(' or ',' followed by '='
syn match nnKeywordArg "\([(,]\s*\)\@<=\h\w*\ze\s*="
syn match nnDefName "\(\<def\s\+\)\@<=\h\w*"
syn region nnString start=+"+ skip=+\\\\\|\\"+ end=+"+ oneline contains=nnEscape
syn match nnEscape +\\[\\"]+ contained
syn match nnComment "#.*$" contains=nnTodo
syn keyword nnTodo TODO FIXME XXX NOTE contained

hi def link nnKeyword Keyword
hi def link nnType Type
hi def link nnBoolean Boolean
hi def link nnOp Function
hi def link nnSetting Function
hi def link nnArrow Operator
hi def link nnOperator Operator
hi def link nnNumber Number
hi def link nnKeywordArg Identifier
hi def link nnDefName Function
hi def link nnString String
hi def link nnEscape SpecialChar
hi def link nnComment Comment
hi def link nnTodo Todo

let b:current_syntax = "nn"
