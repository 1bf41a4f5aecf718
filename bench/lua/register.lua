-- POST /register/ with an email no one has, run after run. args: a tag unique to this wrk run, a password.
wrk.method = 'POST'
local tag, password, n

function init(args)
  tag, password, n = args[1], args[2], 0
end

function request()
  n = n + 1
  local body = string.format('{"email":"bench-new-%s-%d-%d@example.com","full_name":"New %d","password":"%s"}', tag, id, n, n, password)
  return wrk.format(nil, nil, nil, body)
end
