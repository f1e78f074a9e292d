"""The publish script: one stream's entries added in one call, idempotent, fenced, checked for lost data.

What it does and why is in `pipeline.streams.writer` (exactly once, fencing, `LOST`); this module holds the
Lua text and its calling convention alone. Cost per call, as Redis counts commands (INFO commandstats):
`EVALSHA`, `GET` of the lease (fenced streams), one `XADD` per entry, an `XRANGE` per entry sent again
(its `XADD` refused: the id is not above the stream's last), `XINFO STREAM` only when an expected last id is
given (after a server change, `pipeline.streams.server_watch`), and `TIME` + `XTRIM` when trimming by age is
due (at most once per tenth of the retention).
"""

from __future__ import annotations

from affectstream.pipeline.streams.scripts import LuaScript

# KEYS[1] the stream, KEYS[2] (optional) its lease; ARGV: maxlen, expected last id ("" = no expectation),
# the lease token ("" without a lease), the lease TTL in ms to take a free lease with ("" = never: a fleet
# camera's lease is only ever taken by its claim loop), the retention in ms ("" = do not trim by time now:
# entries older than that by Redis's clock go, `XTRIM MINID ~`), then per entry: id, field count (2 x pairs),
# field, value, ... Returns {added, present, rejected ids}: an entry whose id is not above the
# stream's last id is `present` when that very id is in the stream (an earlier attempt wrote it) and
# `rejected` when it is not (another writer went past it: it is lost, and must not be counted). Error
# replies: "FENCED <holder token>" when the lease is another's (nothing added), "LOST <last id>" when the
# stream's last id is below the expected one (Redis lost acknowledged entries).
_SOURCE = """
local key = KEYS[1]
local maxlen = ARGV[1]
local expect = ARGV[2]
if #KEYS > 1 then
  local holder = redis.call('GET', KEYS[2])
  if not holder and ARGV[4] ~= '' then
    -- a writer lease that expired while Redis stalled and that nobody took since: still ours
    redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
    holder = ARGV[3]
  end
  if holder ~= ARGV[3] then
    return redis.error_reply('FENCED ' .. (holder or ''))
  end
end
if expect ~= '' then
  -- asked only after the writer's connection reached another server (`server_watch`): the check costs
  -- as much Redis CPU as the rest of a one-frame call
  local last = '0-0'
  local info = redis.pcall('XINFO', 'STREAM', key)  -- an error: no stream yet (another type fails the XADD)
  if not info.err then
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then last = info[i + 1] end
    end
  end
  local function parse(id)
    local ms, seq = string.match(id, '^(%d+)-(%d+)$')
    return tonumber(ms), tonumber(seq)
  end
  local t_ms, t_seq = parse(last)
  local e_ms, e_seq = parse(expect)
  if e_ms > t_ms or (e_ms == t_ms and e_seq > t_seq) then
    return redis.error_reply('LOST ' .. last)
  end
end
local added, present, rejected, i = 0, 0, {}, 6
while i <= #ARGV do
  local id, n = ARGV[i], tonumber(ARGV[i + 1])
  local ok = redis.pcall('XADD', key, 'MAXLEN', '~', maxlen, id, unpack(ARGV, i + 2, i + 1 + n))
  if not ok.err then
    added = added + 1
  elseif not string.find(ok.err, 'equal or smaller', 1, true) then
    return ok  -- WRONGTYPE, OOM, ...: nothing after it is added, the caller classes the error
  elseif #redis.call('XRANGE', key, id, id) == 1 then
    present = present + 1
  else
    rejected[#rejected + 1] = id
  end
  i = i + 2 + n
end
if ARGV[5] ~= '' then
  local now = redis.call('TIME')
  local cut = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[5])
  redis.call('XTRIM', key, 'MINID', '~', string.format('%d', cut))
end
return {added, present, rejected}
"""


PUBLISH = LuaScript(_SOURCE)
