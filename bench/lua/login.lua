-- POST /login/ as a different seeded user each time (a user's sessions are few in real life, and each
-- login walks that user's session index). args: seeded user count, their password, wrk thread count.
wrk.method = 'POST'
local users, password, threads, n

function init(args)
  users, password, threads, n = tonumber(args[1]), args[2], tonumber(args[3]), 0
end

function request()
  local user = (id + threads * n) % users
  n = n + 1
  return wrk.format(nil, nil, nil, string.format('{"email":"bench-user-%d@example.com","password":"%s"}', user, password))
end
