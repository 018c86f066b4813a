-- Neovim's built-in LSP client attached to `nnc lsp` (run by nvim_test.py):
--   NNC=... NN_FILE=... OUT=... nvim --headless --clean -c "luafile nvim_client.lua"
-- Opens the file (which has one error), waits for the diagnostics, asks for a hover, fixes the
-- error by editing the buffer, waits for the diagnostics to clear, and writes what it saw to OUT.
local nnc, file, out = os.getenv('NNC'), os.getenv('NN_FILE'), os.getenv('OUT')
local lines = {}
local function say(s)
  for piece in (s .. '\n'):gmatch('(.-)\n') do table.insert(lines, piece) end
end

vim.cmd('edit ' .. vim.fn.fnameescape(file))
local buf = vim.api.nvim_get_current_buf()
local config = { name = 'nnc', cmd = { nnc, 'lsp' }, root_dir = vim.fn.fnamemodify(file, ':h') }
local client
if vim.lsp.start then
  client = vim.lsp.start(config) -- Neovim 0.8 and later
else
  client = vim.lsp.start_client(config) -- 0.7 (Debian 12)
  vim.lsp.buf_attach_client(buf, client)
end

local function diagnostics() return vim.diagnostic.get(buf) end
if not vim.wait(20000, function() return #diagnostics() > 0 end, 20) then say('no diagnostics arrived') end
for _, d in ipairs(diagnostics()) do
  say(string.format('diagnostic %d:%d-%d:%d severity=%d %s', d.lnum, d.col, d.end_lnum, d.end_col, d.severity, d.message))
end

-- hover on `dense` in `h = x -> dense(width) -> ...` (line 13, 0-based 12)
local params = { textDocument = { uri = vim.uri_from_bufnr(buf) }, position = { line = 12, character = 16 } }
local responses = vim.lsp.buf_request_sync(buf, 'textDocument/hover', params, 20000)
for _, r in pairs(responses or {}) do
  if r.result then say('hover: ' .. r.result.contents.value) end
  if r.err then say('hover error: ' .. vim.inspect(r.err)) end
end

-- fix the misspelt name in the buffer: the change goes to the server, which clears the error
local row = vim.api.nvim_buf_get_lines(buf, 12, 13, false)[1]
vim.api.nvim_buf_set_lines(buf, 12, 13, false, { (row:gsub('widht', 'width')) })
if vim.wait(20000, function() return #diagnostics() == 0 end, 20) then
  say('diagnostics after the fix: 0')
else
  say('diagnostics after the fix: ' .. #diagnostics())
end

vim.fn.writefile(lines, out)
vim.lsp.stop_client(client)
vim.cmd('qa!')
