-- PUT /update/ with a name never used before (an unchanged name writes nothing and emits no event), as
-- many users in turn (one user's updates queue on their row lock). args: a file of access tokens (one a
-- line), a tag unique to this wrk run, wrk thread count.
wrk.method = 'PUT'
local tokens, tag, threads, n = {}, nil, nil, 0

function init(args)
  for token in io.lines(args[1]) do tokens[#tokens + 1] = token end
  tag, threads = args[2], tonumber(args[3])
end

function request()
  wrk.headers['Authorization'] = 'JWT ' .. tokens[(id + threads * n) % #tokens + 1]
  n = n + 1
  return wrk.format(nil, nil, nil, string.format('{"full_name":"Bench %s %d-%d"}', tag, id, n))
end
