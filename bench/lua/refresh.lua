-- POST /refresh/ with a token never presented before: refresh rotates, and a token presented again after
-- the grace period ends its whole session. args: a file of refresh tokens (one a line), wrk thread count;
-- each thread takes every thread-count-th token. A thread that runs out sends an invalid token, which
-- fails the run, and counts it in `exhausted` so the harness can say why.
wrk.method = 'POST'
local tokens, next = {}, 1

function init(args)
  local threads, line = tonumber(args[2]), 0
  for token in io.lines(args[1]) do
    if line % threads == id then tokens[#tokens + 1] = token end
    line = line + 1
  end
  exhausted = 0
end

function request()
  local token = tokens[next]
  if token then
    next = next + 1
  else
    exhausted = exhausted + 1
    token = 'exhausted'
  end
  return wrk.format(nil, nil, nil, '{"refresh":"' .. token .. '"}')
end
