-- The atomic steps of a space kept in Redis (see docs/scaling.md for the key layout).
-- This prelude is put before every script of src/tuplespace/stores/_redis.py.
-- KEYS[1] is the space's key prefix, "{ts:<space>}": every key of the space starts
-- with it, so all of them share one hash slot.
local P = KEYS[1]
local CFG, SEQ, TUP, EXP = P .. ':cfg', P .. ':seq', P .. ':tup', P .. ':exp'
local CNT, CH, EV = P .. ':cnt', P .. ':ch', P .. ':ev'
local W, WN, WEXP = P .. ':w', P .. ':wn', P .. ':wexp'
local TXN, TXEXP = P .. ':txn', P .. ':txexp'
local RULES, RST = P .. ':rules', P .. ':rst'
-- Rules (src/tuplespace/stores/_redis_rules_async.py): ``rules`` maps each rule's name to
-- "<its number> <the seq of the latest event when it was added> <its definition>";
-- ``cfg`` holds their version (``rulev``, one more at each change), how many there are
-- (``rules``), the numbers given (``rulen``) and the seq of the latest event whose
-- reactions have run (``fired``).  ``rst`` holds each rule's counts, "<name> f" (fired)
-- and "<name> x" (failed), its latest failure, "<name> e", and "<name> s" while it is
-- stopped for want of credit.  A partitioned space keeps them in its first partition,
-- seqs there being the space's; ``rowe`` maps "<seq> <rank> <partition>" to what the
-- firings of the event ``seq`` owe another partition (rank 0 where they take, 1
-- elsewhere: the order in which those are done), a JSON list of encodings and
-- index keys, and the tuples held there to take or to give back), made there by
-- rule_owed, and the other partitions' ``cfg`` hold a copy of ``rules`` and ``rulev``
-- (rule_flag), so that a write there answers 'fire'.  A firing that takes in other
-- partitions is first announced in the first partition (``rint``: "<hold> <partitions>
-- <end of its lease in ms>", rule_intent), then the tuples are held there (``h:<hold>``,
-- rule_hold), then it is decided (rule_fire), which ends the announcement.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- ``cfg`` holds the space's options, and the state of its event log: the seq of the
-- latest event (``ev_last``), of the oldest logged (``ev_first``, 0: none), of the
-- latest dropped from the log (``ev_gone``, 0: none), how many are logged (``ev_n``)
-- and the bytes of tuple encodings logged (``ev_bytes``); and how many transactions are
-- open (``txns``); and how many rules the space has (``rules``); and how many tuples were
-- taken (``takes``: kept with the log's state, which a take changes anyway); and
-- ``clock``, the time of a space that follows a simulated clock (ms), which is then its
-- time instead of Redis's; and ``due`` (see expire_due).
local cfg = redis.call('HMGET', CFG, 'capacity', 'event_retention', 'event_retention_bytes', 'ev_last',
  'ev_first', 'ev_bytes', 'txns', 'rules', 'takes', 'ev_n', 'ev_gone', 'clock', 'due', 'order')
-- A space without its options (Redis lost its data: a restart without it, a flush; or
-- a server deleted the space) is not made anew by a script that changes it, only by
-- ``open`` (``opens``): the others refuse, before they change anything.
if not cfg[14] and not opens then
  error({err = 'GONE the space is not in Redis'})
end
local now = tonumber(cfg[12] or '') or now_ms()
local capacity, retention, budget = tonumber(cfg[1] or ''), tonumber(cfg[2] or ''), tonumber(cfg[3] or '')
local ev_last, ev_first, ev_bytes = tonumber(cfg[4] or '0'), tonumber(cfg[5] or '0'), tonumber(cfg[6] or '0')
local txns = tonumber(cfg[7] or '0')
local rules = tonumber(cfg[8] or '0')
local ev_n = tonumber(cfg[10] or '') or (ev_first > 0 and ev_last - ev_first + 1 or 0)
local ev_gone = tonumber(cfg[11] or '') or math.max(ev_first - 1, 0)
-- No tuple's lease in ``exp`` nor taker's registration in ``wexp`` ends before ``due``
-- (ms, 'none': there are none; a bound that every script adding one lowers; unknown
-- when missing), so that a script looks for what has ended only once something may have.
local due = cfg[13] == 'none' and math.huge or tonumber(cfg[13] or '')
local due_kept = due

-- Lower ``due`` to ``ends``, the end of a lease or registration being added.
local function due_by(ends)
  if due and ends < due then
    due, due_kept = ends, ends
    redis.call('HSET', CFG, 'due', string.format('%.17g', ends))
  end
end
-- How many tuples this script removed and read, and the count of takes (see tell_room).
local removed, read = 0, 0
local takes = tonumber(cfg[9] or '0')
local takes_kept = takes
-- A partition of a partitioned space is given KEYS[2]: the prefix, ':' and the latest
-- seq the calling process knows of in any partition.  The events logged here come
-- after it (seqs are a Lamport clock), so every process orders the changes a process
-- made one after the other as it made them; the seqs of a partition may skip numbers.
local ev_kept = ev_last
if KEYS[2] then
  ev_last = math.max(ev_last, tonumber(string.sub(KEYS[2], #P + 2)))
end

-- Number an event and log it in the space's stream (id ``<seq>-0``), which keeps the
-- latest ``retention`` events, as many as hold at most ``budget`` bytes of tuples,
-- and the latest one always.
local function log(kind, data)
  ev_last = ev_last + 1
  redis.call('XADD', EV, ev_last .. '-0', 'k', kind, 'd', data, 't', now)
  ev_bytes = ev_bytes + #data
  ev_n = ev_n + 1
  if ev_first == 0 then
    ev_first = ev_last
  end
  while ev_n > 1 and (ev_n > retention or ev_bytes > budget) do
    local oldest = redis.call('XRANGE', EV, '-', '+', 'COUNT', 2)
    redis.call('XDEL', EV, oldest[1][1])
    ev_bytes = ev_bytes - #oldest[1][2][4]
    ev_gone = tonumber(string.match(oldest[1][1], '^%d+'))
    ev_first = tonumber(string.match(oldest[2][1], '^%d+'))
    ev_n = ev_n - 1
  end
  redis.call('HSET', CFG, 'ev_last', ev_last, 'ev_first', ev_first, 'ev_bytes', ev_bytes, 'ev_n', ev_n,
    'ev_gone', ev_gone, 'takes', takes)
  takes_kept = takes
end

-- A tuple is kept as its encoding, a newline, then its index keys joined by newlines
-- (the canonical JSON encoding holds no newline).
local function encoding(kept)
  return string.sub(kept, 1, string.find(kept, '\n', 1, true) - 1)
end

-- Remove the tuple ``id`` (an event of ``kind``); its encoding, or false if it is not there.
local function remove(id, kind)
  local kept = redis.call('HGET', TUP, id)
  if not kept then
    return false
  end
  local cut = string.find(kept, '\n', 1, true)
  for k in string.gmatch(string.sub(kept, cut + 1), '[^\n]+') do
    redis.call('ZREM', P .. ':' .. k, id)
  end
  redis.call('HDEL', TUP, id)
  redis.call('ZREM', EXP, id)
  removed = removed + 1
  local data = string.sub(kept, 1, cut - 1)
  log(kind, data)
  return data
end

-- Takers waiting in Redis, registered by the find script (mode 'take' with a hold):
-- each is named by its token, who waits (its process's own name for it); ``w`` maps
-- each token to who waits and how many tuples it takes (1: a take; a take_all's limit,
-- -1: none), then its template's index keys, joined by newlines; ``wq:<key>`` (sorted
-- set, score = its number from ``wn``, in the order they registered) queues the tokens
-- under their template's first key; ``wexp`` scores them by the end of their
-- registration.  A tuple handed to one is pushed on ``r:<token>`` as "<id> <expiry>", a
-- newline and what ``tup`` would keep, for its process to pop; what is still there when
-- the registration's time is over goes back into the space.  A take_all handed a tuple
-- leaves the queue but keeps its place for the rest of the script: it is handed every
-- tuple of that script it matches, up to its limit, before the takers after it.
local function unregister(token)
  local waiting = redis.call('HGET', W, token)
  if waiting then
    redis.call('ZREM', P .. ':wq:' .. string.match(waiting, '\n([^\n]+)'), token)
    redis.call('HDEL', W, token)
  end
end

-- The take_alls this script handed tuples to and that take more: token -> {their number
-- in the queue, their index keys, how many more they take (-1: any number)}.
local serving = {}

-- Whether every index key of ``waiting`` (joined by newlines) is in the set ``have``.
local function fits(waiting, have)
  for t in string.gmatch(waiting, '[^\n]+') do
    if not have[t] then
      return false
    end
  end
  return true
end

-- Hand a tuple being written to the first registered taker whose template it matches;
-- who that taker is, or false.
local function hand_over(id, data, keys, expires)
  if next(serving) == nil and redis.call('HLEN', W) == 0 then
    return false
  end
  local have = {}
  for k in string.gmatch(keys, '[^\n]+') do
    have[k] = true
  end
  local best, who, waiting
  for k in pairs(have) do
    local queued = redis.call('ZRANGE', P .. ':wq:' .. k, 0, -1, 'WITHSCORES')
    for i = 1, #queued, 2 do
      local token, number = queued[i], tonumber(queued[i + 1])
      if best and number > best then
        break
      end
      local entry = redis.call('HGET', W, token)
      local cut = string.find(entry, '\n', 1, true)
      if fits(string.sub(entry, cut + 1), have) then
        best, who, waiting = number, token, entry
        break
      end
    end
  end
  for token, group in pairs(serving) do
    if (not best or group[1] < best) and fits(group[2], have) then
      best, who, waiting = group[1], token, nil
    end
  end
  if not best then
    return false
  end
  if waiting then
    unregister(who)
    local more = tonumber(string.match(waiting, '^%S+ (%-?%d+)') or '1')
    if more ~= 1 then
      serving[who] = {best, string.sub(waiting, string.find(waiting, '\n', 1, true) + 1), more - 1}
    end
  else
    local group = serving[who]
    group[3] = group[3] - 1
    if group[3] == 0 then
      serving[who] = nil
    end
  end
  redis.call('RPUSH', P .. ':r:' .. who, id .. ' ' .. (expires or '') .. '\n' .. data .. '\n' .. keys)
  takes = takes + 1
  log('take', data)
  return who
end

-- Store the tuple ``id`` (its encoding, its index keys joined by newlines, its expiry
-- or false) at its place in the order, or hand it to a registered taker.
local function place(id, data, keys, expires)
  local taker = hand_over(id, data, keys, expires)
  if not taker then
    redis.call('HSET', TUP, id, data .. '\n' .. keys)
    for k in string.gmatch(keys, '[^\n]+') do
      redis.call('ZADD', P .. ':' .. k, id, id)
    end
    if expires then
      redis.call('ZADD', EXP, expires, id)
      due_by(expires)
    end
  end
  redis.call('SPUBLISH', CH, id .. (taker and '>' .. taker or '') .. ' ' .. data)
end

-- Store a new tuple, or hand it to a registered taker; its id.
local function put(data, keys, expires)
  local id = redis.call('INCR', SEQ)
  log('write', data)
  place(id, data, keys, expires)
  return id
end

-- Transactions: ``txexp`` scores each open transaction by the end of its lease;
-- ``h:<tx>`` holds the tuples it took, each id mapped to its expiry ('' for
-- none), a space and what ``tup`` kept.  Their take events are logged at commit.
-- A claim also holds the records it took (rdestroy with a transaction): ``hr:<tx>`` maps
-- each one's rid to its expiry ('' for none) and ``rheld`` the rid to the claim; a held
-- record stays in ``rec`` and keeps its path, out of its index sets and ``rexp``, so
-- that no lookup, find or take sees it; confirming the claim destroys it, ending the
-- claim otherwise puts it back as it was (see the records' part below).
local function txn_open(tx)
  local e = redis.call('ZSCORE', TXEXP, tx)
  return e and tonumber(e) > now
end

-- Move the tuple ``id`` into the holding set of the transaction ``tx``; its encoding,
-- or false if it is not there.
local function hold(id, tx)
  local kept = redis.call('HGET', TUP, id)
  if not kept then
    return false
  end
  local cut = string.find(kept, '\n', 1, true)
  for k in string.gmatch(string.sub(kept, cut + 1), '[^\n]+') do
    redis.call('ZREM', P .. ':' .. k, id)
  end
  local e = redis.call('ZSCORE', EXP, id)
  redis.call('HDEL', TUP, id)
  redis.call('ZREM', EXP, id)
  redis.call('HSET', P .. ':h:' .. tx, id, (e or '') .. ' ' .. kept)
  removed = removed + 1
  return string.sub(kept, 1, cut - 1)
end

-- Take the tuple ``id`` for the transaction ``tx`` ('': for good).
local function take_for(id, tx)
  takes = takes + 1  -- before the take event logs it
  local data
  if tx == '' then
    data = remove(id, 'take')
  else
    data = hold(id, tx)
  end
  if not data then
    takes = takes - 1
  end
  return data
end

-- Put the tuple ``id`` that the holding set ``held`` holds back at its place in the
-- order (or let it expire, if its lease ran out meanwhile), without an event.
local function give_back(held, id)
  local e, kept = string.match(redis.call('HGET', held, id), '^(%S*) (.*)$')
  local cut = string.find(kept, '\n', 1, true)
  local data = string.sub(kept, 1, cut - 1)
  local expires = tonumber(e)
  if expires and expires <= now then
    redis.call('HINCRBY', CNT, 'expired', 1)
    log('expire', data)
  else
    place(id, data, string.sub(kept, cut + 1), expires or false)
  end
  redis.call('HDEL', held, id)
end

-- The ids of the tuples the holding set ``held`` holds, in their order.
local function held_ids(held)
  local ids = {}
  for _, id in ipairs(redis.call('HKEYS', held)) do
    ids[#ids + 1] = tonumber(id)
  end
  table.sort(ids)
  return ids
end

-- Make the takes of the open transaction ``tx`` final: the take events of the tuples
-- it holds, in their order.
local function settle(tx)
  local held = P .. ':h:' .. tx
  local ids = held_ids(held)
  for _, id in ipairs(ids) do
    local kept = string.match(redis.call('HGET', held, id), '^%S* (.*)$')
    log('take', encoding(kept))
  end
  if #ids > 0 then  -- take events logged, no tuple gone now: subscriptions read on
    redis.call('SPUBLISH', CH, 'r 0')
  end
  redis.call('DEL', held)
  redis.call('ZREM', TXEXP, tx)
  redis.call('HINCRBY', CNT, 'commits', 1)
  txns = redis.call('HINCRBY', CFG, 'txns', -1)
end

-- Put the records the claim ``tx`` holds back as they were, and tell the takers.
local function give_back_records(tx)
  local hr = P .. ':hr:' .. tx
  local held = redis.call('HGETALL', hr)
  if #held == 0 then
    return
  end
  for i = 1, #held, 2 do
    local rid, e = held[i], held[i + 1]
    local kept = redis.call('HGET', P .. ':rec', rid)
    if kept then
      local a = string.find(kept, '\n', 1, true)
      for k in string.gmatch(string.sub(kept, string.find(kept, '\n', a + 1, true) + 1), '[^\n]+') do
        redis.call('ZADD', P .. ':' .. k, rid, rid)
      end
      if e ~= '' then
        redis.call('ZADD', P .. ':rexp', e, rid)
      end
    end
    redis.call('HDEL', P .. ':rheld', rid)
  end
  redis.call('DEL', hr)
  redis.call('SPUBLISH', CH, 'R')
end

-- Abort the transaction ``tx``: every tuple it holds goes back to its place, and every
-- record it holds.
local function abort(tx)
  local held = P .. ':h:' .. tx
  for _, id in ipairs(held_ids(held)) do
    give_back(held, id)
  end
  redis.call('DEL', held)
  give_back_records(tx)
  redis.call('ZREM', TXEXP, tx)
  redis.call('HINCRBY', CNT, 'aborts', 1)
  txns = redis.call('HINCRBY', CFG, 'txns', -1)
end

-- Put back what was handed to ``token`` and not taken (its call ended otherwise, or
-- its process went away), as new writes.
local function restore(token)
  local inbox = P .. ':r:' .. token
  for _, entry in ipairs(redis.call('LRANGE', inbox, 0, -1)) do
    local a = string.find(entry, '\n', 1, true)
    local b = string.find(entry, '\n', a + 1, true)
    local expires = tonumber(string.match(string.sub(entry, 1, a - 1), ' (%d+)$') or '')
    if not expires or expires > now then
      put(string.sub(entry, a + 1, b - 1), string.sub(entry, b + 1), expires or false)
    end
  end
  redis.call('DEL', inbox)
end

-- Abort the transactions whose lease has run out (a bounded number per call), and tell
-- their processes: the calls waiting inside one end at once.
local function expire_txns()
  if txns > 0 then
    for _, tx in ipairs(redis.call('ZRANGEBYSCORE', TXEXP, '-inf', now, 'LIMIT', 0, 16)) do
      abort(tx)
      redis.call('SPUBLISH', CH, 'a ' .. tx)
    end
  end
end

-- Remove what has expired (a bounded number per call; scans skip the others), and
-- the registrations of takers that ended without a word, giving back what they held;
-- nothing to look for while ``due`` is ahead.
local function expire_due()
  expire_txns()
  if due and due > now then
    return
  end
  for _, token in ipairs(redis.call('ZRANGEBYSCORE', WEXP, '-inf', now, 'LIMIT', 0, 16)) do
    redis.call('ZREM', WEXP, token)
    unregister(token)
    restore(token)
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', EXP, '-inf', now, 'LIMIT', 0, 64)) do
    if remove(id, 'expire') then
      redis.call('HINCRBY', CNT, 'expired', 1)
    end
  end
  local lease = redis.call('ZRANGE', EXP, 0, 0, 'WITHSCORES')[2]
  local registration = redis.call('ZRANGE', WEXP, 0, 0, 'WITHSCORES')[2]
  due = math.min(tonumber(lease or '') or math.huge, tonumber(registration or '') or math.huge)
  if due ~= due_kept then
    due_kept = due
    redis.call('HSET', CFG, 'due', due == math.huge and 'none' or string.format('%.17g', due))
  end
end

local function alive(id)
  local e = redis.call('ZSCORE', EXP, id)
  return (not e) or tonumber(e) > now
end

-- Tell the processes listening how many tuples went: writers waiting for room, and
-- subscriptions waiting for the events it logged; and count the takes no event logged
-- (``cfg``: ``takes``) and the reads (``cnt``: ``reads``).
local function tell_room()
  if removed > 0 then
    redis.call('SPUBLISH', CH, 'r ' .. removed)
  end
  if takes ~= takes_kept then
    redis.call('HSET', CFG, 'takes', takes)
  end
  if read > 0 then
    redis.call('HINCRBY', CNT, 'reads', read)
  end
end

local function live_count()
  return redis.call('HLEN', TUP) - redis.call('ZCOUNT', EXP, '-inf', now)
end

-- In the first partition of a partitioned space with a capacity: the tuples counted in
-- the space, as last read in each partition and reserved (see cap_reserve).
local function counted()
  local n = 0
  local cap = redis.call('HGETALL', P .. ':cap')
  for i = 1, #cap, 2 do
    if string.sub(cap[i], 1, 2) == 'l:' then
      n = n + tonumber(cap[i + 1])
    end
  end
  for _, r in ipairs(redis.call('ZRANGE', P .. ':res', 0, -1)) do
    n = n + tonumber(string.match(r, '^%S+ (%d+)'))
  end
  return n
end

-- Milliseconds until the next lease ends, or -1 when no tuple has a lease.
local function next_expiry()
  local first = redis.call('ZRANGE', EXP, 0, 0, 'WITHSCORES')
  if first[2] then
    return string.format('%.17g', math.max(tonumber(first[2]) - now, 0))
  end
  return '-1'
end

-- The version of the rules, the seq of the latest event whose reactions have run, how
-- many events passed out of the log before their reactions ran (skipped now), then seq,
-- kind and encoding of the events after (at most ``n``).
local function pending(n)
  local fired = tonumber(redis.call('HGET', CFG, 'fired') or '0')
  if tonumber(n) == 0 then  -- a partitioned space: its process reads the partitions' logs
    return {redis.call('HGET', CFG, 'rulev') or '0', fired, 0}
  end
  local lost = 0
  if rules > 0 and ev_first > fired + 1 then
    lost = ev_first - 1 - fired
    fired = ev_first - 1
    redis.call('HSET', CFG, 'fired', fired)
    redis.call('HINCRBY', CNT, 'rules_lost', lost)
  end
  local out = {redis.call('HGET', CFG, 'rulev') or '0', fired, lost}
  if rules > 0 then
    for _, entry in ipairs(redis.call('XRANGE', EV, '(' .. fired .. '-0', '+', 'COUNT', n)) do
      local f = entry[2]
      out[#out + 1] = string.match(entry[1], '^%d+')
      out[#out + 1] = f[2]
      out[#out + 1] = f[4]
    end
  end
  return out
end

-- Commits the transaction ARGV[1]: logs the take events of the tuples it holds, then
-- writes those of the rest of ARGV (each a lease in ms, '' for none, an encoding and
-- index keys); 1, or 0 if the transaction is not open (its lease ran out: it was aborted),
-- or -1 if its writes do not fit in the space's capacity (it is aborted; in a partition
-- of a partitioned space, room was reserved for them first, see cap_reserve).
local function commit()
  expire_due()
  local tx = ARGV[1]
  if not txn_open(tx) then
    if redis.call('ZSCORE', TXEXP, tx) then
      abort(tx)
    end
    tell_room()
    return 0
  end
  if capacity and not KEYS[2] and #ARGV > 1 and live_count() + (#ARGV - 1) / 3 > capacity then
    abort(tx)
    tell_room()
    return -1
  end
  settle(tx)
  for i = 2, #ARGV, 3 do
    local expires = ARGV[i] ~= '' and now + tonumber(ARGV[i]) or false
    put(ARGV[i + 1], ARGV[i + 2], expires)
  end
  tell_room()
  return 1
end

--[[ _records ]]
-- What the scripts marked "+records" share besides the prelude (the others do not
-- define it, so that a step on tuples costs Redis nothing more for records).
-- Records (see docs/scaling.md, Records): ``rec`` maps each record's rid to its
-- version and path ("<version> <path>"), a newline, its fields, a newline and its index
-- keys joined by newlines: ``ra`` (every record) and ``rx:<tag>:<value>`` (sorted sets of
-- rids, score = rid).  The fields are "<tag>\t<encoding of the value>" joined by \31, in
-- the order the tags were first set (canonical JSON holds neither a tab nor a control
-- character).  ``rpath`` maps paths to rids, ``rn`` holds the latest rid and ``rexp``
-- scores the leased ones by their expiry.  Containment: ``rk:<rid>`` maps each tag of a
-- record holding the address of another to that one's rid, ``rc:<rid>`` each record
-- containing it to how many of its fields do.  Their events are logged as "r.<kind>",
-- "<rid> <version> <path>", a newline, the tag, a newline and the value's encoding; each
-- script that changes a record publishes "R" on the channel.  The path a record moved
-- from answers for it while its redirection lasts: ``rdir`` maps it to the rid,
-- ``rdirexp`` scores it by its end (none: as long as the record lives), ``rd:<rid>``
-- holds the paths redirected to a record.  Capabilities: ``caps`` maps each token to
-- "<rid> <operations joined by commas>", ``capexp`` scores those with a lease by their
-- end, ``rcaps:<rid>`` holds a record's tokens and ``ro`` maps a rid to the token of its
-- read-only handle.  A script given a record as "$<token>" acts on the capability's
-- record while the capability lasts.  Credit, in units of 1e-9 (an integer): ``rcr``
-- maps a rid to what the record holds, ``acct`` a principal to its balance.  A space
-- whose ``cfg`` has a ``charge_rate`` (per second for each KiB a record stores) or a
-- ``creation_charge`` charges: what it burns goes to the account of ``operator``, as do
-- the ``firing_charge`` of each firing of a rule and the ``step_charge`` of the steps a
-- method runs.  With
-- a charge rate, ``rch`` maps each record's rid to "<ms> <size>": since when it drains
-- what ``rcr`` holds (Redis's clock), and the bytes it stores; its expiry in ``rexp`` is
-- when that runs out.
local REC, RPATH, RN, REXP = P .. ':rec', P .. ':rpath', P .. ':rn', P .. ':rexp'
local RDIR, RDIREXP = P .. ':rdir', P .. ':rdirexp'
local CAPS, CAPEXP, RO = P .. ':caps', P .. ':capexp', P .. ':ro'
local RCR, ACCT, RCH = P .. ':rcr', P .. ':acct', P .. ':rch'
local charges = redis.call('HMGET', CFG, 'charge_rate', 'creation_charge', 'operator', 'firing_charge')
local charge_rate, creation_charge = charges[1] or '0', charges[2] or '0'
local operator, firing_charge = charges[3] or 'operator', charges[4] or '0'
local charging = charge_rate ~= '0' or creation_charge ~= '0'
local FIELD = '([^\t\31]+)\t([^\31]+)'
local rchanged = false

local function rsplit(kept)
  local a = string.find(kept, '\n', 1, true)
  local b = string.find(kept, '\n', a + 1, true)
  local version, path = string.match(string.sub(kept, 1, a - 1), '^(%d+) (.*)$')
  return version, path, string.sub(kept, a + 1, b - 1), string.sub(kept, b + 1)
end

local function rlog(kind, rid, version, path, tag, value)
  log('r.' .. kind, rid .. ' ' .. version .. ' ' .. path .. '\n' .. tag .. '\n' .. value)
  rchanged = true
end

-- ``out``, and 'fire' after it if the space has rules (which the caller runs).
local function with_rules(out)
  if rules > 0 then
    out[#out + 1] = 'fire'
  end
  return out
end

local function ralive(rid)
  local e = redis.call('ZSCORE', REXP, rid)
  return (not e) or tonumber(e) > now
end

-- The record ``rid`` if it is there, alive and held by no claim, else false.
local function rget(rid)
  return rid and ralive(rid) and redis.call('HEXISTS', P .. ':rheld', rid) == 0 and redis.call('HGET', REC, rid)
end

-- Whether a record has ``path`` (one held by a claim keeps it).
local function rtaken(path)
  local rid = redis.call('HGET', RPATH, path)
  return rid and (rget(rid) or redis.call('HEXISTS', P .. ':rheld', rid) == 1)
end

-- The index key of a field (as encode_record makes it).
local function fkey(tag, enc)
  if #enc > 64 then
    enc = '#' .. redis.sha1hex(enc)
  end
  return 'rx:' .. tag .. ':' .. enc
end

local function rkeys(fields)
  local keys = {'ra'}
  for tag, enc in string.gmatch(fields, FIELD) do
    keys[#keys + 1] = fkey(tag, enc)
  end
  return table.concat(keys, '\n')
end

-- Credit is exact: amounts, and their products with sizes and times, are big integers
-- (tables of base-2^24 digits, least significant first), which Lua's doubles are not.
local BASE = 16777216
local KIB_MS = 1024000  -- bytes in a KiB, times ms in a second

local function trim(a)
  while #a > 1 and a[#a] == 0 do
    a[#a] = nil
  end
  return a
end

local function num(n)  -- an integer below 2^53
  local a = {}
  repeat
    a[#a + 1] = n % BASE
    n = math.floor(n / BASE)
  until n == 0
  return a
end

local function big(s)  -- an integer written in decimal, without sign
  local a = {0}
  for i = 1, #s do
    local carry = string.byte(s, i) - 48
    for j = 1, #a do
      local x = a[j] * 10 + carry
      a[j], carry = x % BASE, math.floor(x / BASE)
    end
    if carry > 0 then
      a[#a + 1] = carry
    end
  end
  return a
end

local function bmul(a, b)
  local r = {}
  for i = 1, #a + #b do
    r[i] = 0
  end
  for i = 1, #a do
    local carry, k = 0, i + #b
    for j = 1, #b do
      local x = r[i + j - 1] + a[i] * b[j] + carry
      r[i + j - 1], carry = x % BASE, math.floor(x / BASE)
    end
    while carry > 0 do
      local x = r[k] + carry
      r[k], carry = x % BASE, math.floor(x / BASE)
      k = k + 1
    end
  end
  return trim(r)
end

local function badd(a, b)
  local r, carry = {}, 0
  for i = 1, math.max(#a, #b) do
    local x = (a[i] or 0) + (b[i] or 0) + carry
    r[i], carry = x % BASE, math.floor(x / BASE)
  end
  if carry > 0 then
    r[#r + 1] = carry
  end
  return r
end

local function bsub(a, b)  -- a >= b
  local r, borrow = {}, 0
  for i = 1, #a do
    local x = a[i] - (b[i] or 0) - borrow
    borrow = x < 0 and 1 or 0
    r[i] = x + borrow * BASE
  end
  return trim(r)
end

local function bcmp(a, b)  -- -1, 0 or 1
  if #a ~= #b then
    return #a < #b and -1 or 1
  end
  for i = #a, 1, -1 do
    if a[i] ~= b[i] then
      return a[i] < b[i] and -1 or 1
    end
  end
  return 0
end

local function bdiv(a, d)  -- by an integer d below 2^28: the quotient and the remainder
  local q, r = {}, 0
  for i = #a, 1, -1 do
    local x = r * BASE + a[i]
    q[i], r = math.floor(x / d), x % d
  end
  return trim(q), r
end

local function bstr(a)  -- in decimal
  local parts, r = {}, nil
  repeat
    a, r = bdiv(a, 10000000)
    table.insert(parts, 1, r)
  until #a == 1 and a[1] == 0
  local s = string.format('%d', parts[1])
  for i = 2, #parts do
    s = s .. string.format('%07d', parts[i])
  end
  return s
end

local ZERO = {0}

-- The bytes a record stores: its path, and each tag with its value's encoding.
local function rsize(path, fields)
  return #path + #fields - select(2, string.gsub(fields, '[\t\31]', ''))
end

-- Microseconds in ``ms`` milliseconds (Redis's time is in whole ms; a simulated clock's
-- may not be).
local function micros(ms)
  return math.max(math.floor(ms * 1000 + 0.5), 0)
end

-- What ``size`` bytes burn in ``us`` microseconds (rounded up).
local function burned(size, us)
  local q, r = bdiv(bmul(bmul(big(charge_rate), num(size)), num(us)), KIB_MS)
  local whole, rest = bdiv(q, 1000)
  return (r > 0 or rest > 0) and badd(whole, {1}) or whole
end

-- The ms in which ``held`` runs out at the burn rate of ``size`` bytes: the fewest whose
-- burn is all of it are ``ms``; the exact time, ``ms`` less a fraction, is when nothing
-- is left to burn (a double, as an embedded space's expiry).
local function runout(held, size)
  local per, target = bmul(big(charge_rate), num(size)), bmul(held, num(KIB_MS))
  local ms = math.floor(tonumber(bstr(held)) * KIB_MS / (tonumber(charge_rate) * size))
  if ms >= 2 ^ 50 then
    return 2 ^ 50
  end
  while ms > 0 and bcmp(bmul(per, num(ms - 1)), target) >= 0 do
    ms = ms - 1
  end
  while bcmp(bmul(per, num(ms)), target) < 0 do
    ms = ms + 1
  end
  if ms == 0 then
    return 0
  end
  local rest = bsub(target, bmul(per, num(ms - 1)))
  return ms - 1 + tonumber(bstr(rest)) / tonumber(bstr(per))
end

-- What the record ``rid`` holds now, and what it held when it last settled.
local function rcredit(rid)
  local held = big(redis.call('HGET', RCR, rid) or '0')
  local charged = charge_rate ~= '0' and redis.call('HGET', RCH, rid)
  if not charged then
    return held, held
  end
  local since, size = string.match(charged, '^(%S+) (%d+)$')
  local spent = burned(tonumber(size), micros(now - tonumber(since)))
  return bcmp(spent, held) >= 0 and ZERO or bsub(held, spent), held
end

local function burn(amount)
  if bcmp(amount, ZERO) > 0 then
    redis.call('HINCRBY', ACCT, operator, bstr(amount))
  end
end

-- Settle the record ``rid``: what it drained is burned; from now on it drains at the
-- burn rate of ``size`` bytes, until its credit runs out.
local function rsettle(rid, size)
  local left, held = rcredit(rid)
  burn(bsub(held, left))
  redis.call('HSET', RCR, rid, bstr(left))
  redis.call('HSET', RCH, rid, string.format('%.17g', now) .. ' ' .. size)
  redis.call('ZADD', REXP, now + runout(left, size), rid)
end

-- What the records drained since they last settled (the operator's, not yet in its account).
local function drained()
  local sum = ZERO
  for _, rid in ipairs(redis.call('HKEYS', RCH)) do
    local left, held = rcredit(rid)
    sum = badd(sum, bsub(held, left))
  end
  return sum
end

-- The balance of ``who``: the operator's counts what the records drained.
local function balance(who)
  local have = big(redis.call('HGET', ACCT, who) or '0')
  return who == operator and badd(have, drained()) or have
end

-- Take ``cost`` from the account of ``who``: false, or its balance if it holds less.
-- The operator's is settled first: every record's drain goes into it.
local function debit(who, cost)
  local have = balance(who)
  if bcmp(have, cost) < 0 then
    return bstr(have)
  end
  if who == operator then
    for _, rid in ipairs(redis.call('HKEYS', RCH)) do
      rsettle(rid, tonumber(string.match(redis.call('HGET', RCH, rid), ' (%d+)$')))
    end
  end
  if bcmp(cost, ZERO) > 0 then
    redis.call('HINCRBY', ACCT, who, '-' .. bstr(cost))
  end
  return false
end

-- An amount in decimal, as a Credit writes it.
local function decimal(a)
  local d = bstr(a)
  if #d < 10 then
    d = string.rep('0', 10 - #d) .. d
  end
  local fraction = string.gsub(string.sub(d, -9), '0+$', '')
  return string.sub(d, 1, -10) .. (fraction == '' and '' or '.' .. fraction)
end

-- A str as its canonical JSON encoding.
local ESCAPES = {['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t', ['\b'] = '\\b',
  ['\f'] = '\\f'}
local function jstr(s)
  return '"' .. (string.gsub(s, '[%z\1-\31"\\]', function(c)
    return ESCAPES[c] or string.format('\\u%04x', string.byte(c))
  end)) .. '"'
end

-- The writes this script owes the other partitions of a partitioned space, by their
-- numbers (see ``rowe``): ``owe`` adds one, ``keep_owed`` keeps them in ``rowe`` under
-- ``id`` (an event's seq; none: a number of their own).
-- Each is {writes = {encoding, index keys, ...}, take = {ids}, back = {ids}, hold = name}:
-- what it writes there, the ids held there (under ``hold``) that it takes or gives back;
-- in a space with a capacity, ``res`` names the reservation of room for the writes of
-- them all (a lease without end: rule_owed answers readings of the partitions' counts,
-- and cap_settle ends it; the writes of this partition are then owed to it too).
local owed, owing = {}, {}
local function owing_to(q)
  if not owed[q] then
    owed[q] = {writes = {}, take = {}, back = {}, hold = ''}
    owing[#owing + 1] = q
  end
  return owed[q]
end

local function owe(q, data, keys)
  local w = owing_to(q).writes
  w[#w + 1] = data
  w[#w + 1] = keys
end

local function keep_owed(id)
  if #owing > 0 then
    id = id or 'a' .. redis.call('HINCRBY', CFG, 'rowen', 1)
    local writes = 0
    for _, q in ipairs(owing) do
      writes = writes + #owed[q].writes / 2
    end
    if KEYS[2] and capacity and writes > 0 then  -- room for them, until they are counted there
      local res = 'r' .. id .. ' ' .. writes .. ' ' .. table.concat(owing, ',')
      redis.call('ZADD', P .. ':res', '+inf', res)
      for _, q in ipairs(owing) do
        owed[q].res = res
      end
    end
    for _, q in ipairs(owing) do  -- the partitions where it takes first, then the others
      local rank = #owed[q].take > 0 and ' 0 ' or ' 1 '
      redis.call('HSET', P .. ':rowe', id .. rank .. q, cjson.encode(owed[q]))
    end
  end
end

-- Pay for a firing of the rule ``name``: its principal pays ``firing_charge``, which is
-- burned; '', or the failure (JSON) if the principal cannot pay.  Then the rule stops:
-- the space is told once, by the tuple ("rule_stopped", name, principal), until a
-- firing is paid again; ``elsewhere`` (in a partitioned space, given the partition that
-- keeps that tuple if not this one) takes its encoding and index keys instead.
local function pay_firing(name, elsewhere)
  local principal = cjson.decode(string.match(redis.call('HGET', RULES, name), '^%d+ %d+ (.*)$')).principal
  local cost = big(firing_charge)
  local short = debit(principal, cost)
  if not short then
    burn(cost)
    redis.call('HDEL', RST, name .. ' s')
    return ''
  end
  if redis.call('HSETNX', RST, name .. ' s', '1') == 1 then
    local t, keys = {jstr('rule_stopped'), jstr(name), jstr(principal)}, {'a:3'}
    for i, enc in ipairs(t) do
      keys[i + 1] = 'x:3:' .. (i - 1) .. ':' .. (#enc > 64 and '#' .. redis.sha1hex(enc) or enc)
    end
    if elsewhere then
      elsewhere('[' .. table.concat(t, ',') .. ']', table.concat(keys, '\n'))
    else
      put('[' .. table.concat(t, ',') .. ']', table.concat(keys, '\n'), false)
    end
  end
  return cjson.encode({class = 'InsufficientCredit', principal = principal, needed = decimal(cost),
    available = decimal(big(short))})
end

-- Store the new record ``rid``.
local function rstore(rid, path, fields)
  local keys = rkeys(fields)
  redis.call('HSET', REC, rid, '1 ' .. path .. '\n' .. fields .. '\n' .. keys)
  redis.call('HSET', RPATH, path, rid)
  for k in string.gmatch(keys, '[^\n]+') do
    redis.call('ZADD', P .. ':' .. k, rid, rid)
  end
end

-- Set the field ``tag`` of the record ``rid`` to the encoding ``enc`` (an update event),
-- unless it would have more than ``most`` fields; its new version, or false.
local function rwrite(rid, tag, enc, most)
  local version, path, fields, keys = rsplit(redis.call('HGET', REC, rid))
  local out, old = {}, nil
  for t, e in string.gmatch(fields, FIELD) do
    if t == tag then
      old, e = e, enc
    end
    out[#out + 1] = t .. '\t' .. e
  end
  if not old then
    if most and #out >= most then
      return false
    end
    out[#out + 1] = tag .. '\t' .. enc
  else
    redis.call('ZREM', P .. ':' .. fkey(tag, old), rid)
  end
  redis.call('ZADD', P .. ':' .. fkey(tag, enc), rid, rid)
  fields = table.concat(out, '\31')
  if charge_rate ~= '0' then
    rsettle(rid, rsize(path, fields))
  end
  version = tonumber(version) + 1
  redis.call('HSET', REC, rid, version .. ' ' .. path .. '\n' .. fields .. '\n' .. rkeys(fields))
  rlog('update', rid, version, path, tag, enc)
  return version
end

local function link(rid, tag, child)
  redis.call('HSET', P .. ':rk:' .. rid, tag, child)
  redis.call('HINCRBY', P .. ':rc:' .. child, rid, 1)
end

local function unlink(rid, tag)
  local child = redis.call('HGET', P .. ':rk:' .. rid, tag)
  if child then
    redis.call('HDEL', P .. ':rk:' .. rid, tag)
    if redis.call('HINCRBY', P .. ':rc:' .. child, rid, -1) <= 0 then
      redis.call('HDEL', P .. ':rc:' .. child, rid)
    end
  end
end

-- Whether the record ``from`` is ``target`` or contains it, directly or through others.
local function reaches(from, target)
  local seen, stack = {}, {from}
  while #stack > 0 do
    local x = table.remove(stack)
    if x == target then
      return true
    end
    if not seen[x] then
      seen[x] = true
      for _, child in ipairs(redis.call('HVALS', P .. ':rk:' .. x)) do
        stack[#stack + 1] = child
      end
    end
  end
  return false
end

-- One more than the highest level of the records ``rid`` contains, 0 if none.
local function level(rid)
  local top = 0
  for _, child in ipairs(redis.call('HVALS', P .. ':rk:' .. rid)) do
    top = math.max(top, level(child) + 1)
  end
  return top
end

-- The fields of the records containing ``rid`` that hold it, as {container, tag}.
local function holders(rid)
  local out = {}
  for _, c in ipairs(redis.call('HKEYS', P .. ':rc:' .. rid)) do
    local links = redis.call('HGETALL', P .. ':rk:' .. c)
    for i = 1, #links, 2 do
      if links[i + 1] == rid then
        out[#out + 1] = {c, links[i]}
      end
    end
  end
  return out
end

-- Check the links "<tag> <rid> <path>" (joined by newlines) that a caller resolved: each
-- record is alive and still at that path.  {tag, rid} of each, or false.
local function checked_links(text)
  local out = {}
  for tag, rid, path in string.gmatch(text, '(%S+) (%d+) ([^\n]+)') do
    local kept = rget(rid)
    if not kept or select(2, rsplit(kept)) ~= path then
      return false
    end
    out[#out + 1] = {tag, rid}
  end
  return out
end

-- End the capability ``token``, remembering ``why`` ('gone': its record is; 'expired';
-- nil: revoked, which an unknown token reads as) for the latest 10000 ended so (as an
-- embedded space does, ENDED_KEPT): ``capend`` maps each token to why, ``capendq``
-- lists them oldest first.  Whether it was there to end.
local function drop_cap(token, why)
  local cap = redis.call('HGET', CAPS, token)
  if cap then
    local rid = string.match(cap, '^(%d+)')
    redis.call('SREM', P .. ':rcaps:' .. rid, token)
    if redis.call('HGET', RO, rid) == token then
      redis.call('HDEL', RO, rid)
    end
    redis.call('HDEL', CAPS, token)
    redis.call('ZREM', CAPEXP, token)
    if why then
      redis.call('HSET', P .. ':capend', token, why)
      if redis.call('RPUSH', P .. ':capendq', token) > 10000 then
        redis.call('HDEL', P .. ':capend', redis.call('LPOP', P .. ':capendq'))
      end
    end
  end
  return cap ~= false
end

-- The rid a handle names: its record's ("<rid>"), or its capability's ("$<token>")
-- while the capability lasts; else false and why ('revoked', 'expired' or 'gone': its
-- record is).
local function rresolve(ref)
  if string.sub(ref, 1, 1) ~= '$' then
    return ref
  end
  local token = string.sub(ref, 2)
  local cap = redis.call('HGET', CAPS, token)
  if not cap then
    return false, redis.call('HGET', P .. ':capend', token) or 'revoked'
  end
  local e = redis.call('ZSCORE', CAPEXP, token)
  if e and tonumber(e) <= now then
    return false, 'expired'
  end
  return string.match(cap, '^(%d+)')
end

local function drop_redirect(path)
  local rid = redis.call('HGET', RDIR, path)
  if rid then
    redis.call('SREM', P .. ':rd:' .. rid, path)
    redis.call('HDEL', RDIR, path)
    redis.call('ZREM', RDIREXP, path)
  end
end

-- Remove the record ``rid`` (an event of ``kind``): {version, path, fields}, or false.
-- The records it contains are contained by one record less; the fields that held it
-- become null (an update event each).
local function rremove(rid, kind)
  local kept = redis.call('HGET', REC, rid)
  if not kept then
    return false
  end
  local version, path, fields, keys = rsplit(kept)
  for k in string.gmatch(keys, '[^\n]+') do
    redis.call('ZREM', P .. ':' .. k, rid)
  end
  redis.call('HDEL', REC, rid)
  redis.call('HDEL', RPATH, path)
  redis.call('ZREM', REXP, rid)
  if charging then  -- what it drained since it last settled, and what it held
    burn(big(redis.call('HGET', RCR, rid) or '0'))
    redis.call('HDEL', RCH, rid)
  end
  redis.call('HDEL', RCR, rid)
  for _, from in ipairs(redis.call('SMEMBERS', P .. ':rd:' .. rid)) do
    drop_redirect(from)
  end
  for _, token in ipairs(redis.call('SMEMBERS', P .. ':rcaps:' .. rid)) do
    drop_cap(token, 'gone')
  end
  for _, tag in ipairs(redis.call('HKEYS', P .. ':rk:' .. rid)) do
    unlink(rid, tag)
  end
  rlog(kind, rid, version, path, '', '')
  for _, held in ipairs(holders(rid)) do
    unlink(held[1], held[2])
    rwrite(held[1], held[2], 'null')
  end
  return {version, path, fields}
end

-- Hold the record ``rid`` (whose entry in ``rec`` is ``kept``) for the claim ``tx``.
local function rhold(rid, kept, tx)
  local version, path, fields, keys = rsplit(kept)
  for k in string.gmatch(keys, '[^\n]+') do
    redis.call('ZREM', P .. ':' .. k, rid)
  end
  local e = redis.call('ZSCORE', REXP, rid)
  redis.call('ZREM', REXP, rid)
  redis.call('HSET', P .. ':hr:' .. tx, rid, e or '')
  redis.call('HSET', P .. ':rheld', rid, tx)
  return {version, path, fields}
end

-- Destroy the records the claim ``tx`` holds (it was confirmed).
local function confirm_records(tx)
  local hr = P .. ':hr:' .. tx
  for _, rid in ipairs(redis.call('HKEYS', hr)) do
    redis.call('HDEL', P .. ':rheld', rid)
    rremove(rid, 'destroy')
  end
  redis.call('DEL', hr)
end

local function expire_records()
  expire_txns()  -- a claim that ran out gives back the records it holds
  for _, rid in ipairs(redis.call('ZRANGEBYSCORE', REXP, '-inf', now, 'LIMIT', 0, 64)) do
    rremove(rid, 'expire')
    redis.call('HINCRBY', CNT, 'records_expired', 1)
  end
  for _, path in ipairs(redis.call('ZRANGEBYSCORE', RDIREXP, '-inf', now, 'LIMIT', 0, 64)) do
    drop_redirect(path)
  end
end

-- Capabilities whose lease ended are dropped by the scripts that count them (a handle on
-- one learns it expired until then).
local function expire_caps()
  for _, token in ipairs(redis.call('ZRANGEBYSCORE', CAPEXP, '-inf', now, 'LIMIT', 0, 64)) do
    drop_cap(token, 'expired')
  end
end

-- Add ``amount`` to the account of ``principal``, unless it would be an account past
-- the ``most`` or hold more than ``largest``: {its new balance}, {'full'} or {'large'}.
local function credit(principal, amount, most, largest)
  local have = redis.call('HGET', ACCT, principal)
  if not have and principal ~= operator and redis.call('HLEN', ACCT) >= tonumber(most) then
    return {'full'}
  end
  if tonumber(have or '0') + tonumber(amount) > tonumber(largest) then
    return {'large'}
  end
  return {tostring(redis.call('HINCRBY', ACCT, principal, amount))}
end

local function tell_records()
  if rchanged then
    redis.call('SPUBLISH', CH, 'R')
  end
end

--[[ clock +records ]]
-- ARGV: the time of a simulated clock, in ms: the space follows it from now on (for
-- every process), forward only; or "+" and the ms to move a space that follows one
-- forward by (one on Redis's time stays there); or "" to read.  What expired by then is
-- collected, and the processes listening are told the time moved ("c <the time>": the
-- leases their subscriptions count on the clock may have ended, and the calls they time
-- out on it).  The space's time and "1" if it is a simulated clock's, else "0".
local was = now
if ARGV[1] == '+' then
  if cfg[12] then
    now = now + tonumber(ARGV[2])
    redis.call('HSET', CFG, 'clock', string.format('%.17g', now))
  end
elseif ARGV[1] ~= '' and (tonumber(ARGV[1]) > now or not cfg[12]) then
  now = tonumber(ARGV[1])
  redis.call('HSET', CFG, 'clock', ARGV[1])
  cfg[12] = ARGV[1]
end
if now ~= was then
  redis.call('SPUBLISH', CH, 'c ' .. string.format('%.17g', now))
end
expire_due()
expire_records()
tell_room()
tell_records()
return {string.format('%.17g', now), cfg[12] and '1' or '0'}

--[[ open allow-oom ]]
-- ARGV: order, capacity, event_retention, event_retention_bytes, partitions, route,
-- charge_rate, creation_charge, operator, firing_charge, step_charge, mint_amount, mint_bits,
-- redirect_charge.  The reply: the space's options in that order, then Redis's
-- maxmemory-policy, maxmemory and cluster_enabled.
if not cfg[14] then
  redis.call('HSET', CFG, 'order', ARGV[1], 'capacity', ARGV[2], 'event_retention', ARGV[3],
    'event_retention_bytes', ARGV[4], 'partitions', ARGV[5], 'route', ARGV[6], 'charge_rate', ARGV[7],
    'creation_charge', ARGV[8], 'operator', ARGV[9], 'firing_charge', ARGV[10], 'step_charge', ARGV[11],
    'mint_amount', ARGV[12], 'mint_bits', ARGV[13], 'redirect_charge', ARGV[14])
end
-- ``about`` says what the key holds, in more than the 64 bytes of Redis's
-- hash-max-listpack-value: Redis then keeps ``cfg`` as a hash table, where each of the
-- dozen fields every script reads and sets is found at once instead of by a scan of the
-- whole hash (about 5 of a script's 28 µs; bench/RESULTS.md).
redis.call('HSETNX', CFG, 'about', 'the options and state of a space of PyTupleSpace (docs/scaling.md)')
local out = redis.call('HMGET', CFG, 'order', 'capacity', 'event_retention', 'event_retention_bytes', 'partitions',
  'route', 'charge_rate', 'creation_charge', 'operator', 'firing_charge', 'step_charge', 'mint_amount',
  'mint_bits', 'redirect_charge')
-- ('' each when the user may not run INFO.)
local info = redis.pcall('INFO', 'memory', 'cluster')
for _, field in ipairs({'maxmemory_policy', 'maxmemory', 'cluster_enabled'}) do
  out[#out + 1] = type(info) == 'string' and string.match(info, field .. ':(%S+)') or ''
end
return out

--[[ write ]]
-- ARGV: the arity key of a guard ('' for none) and the last id it allows, the lease in
-- ms ('' for none), the mark of the reservation that gave the write room in a partitioned
-- space with a capacity ('' for none; see cap_reserve), then each tuple's encoding and
-- index keys.  {'cancelled'} if that reservation was cancelled here (cap_count); with
-- such a reservation, the reply ends with a reading of the partition's count (as
-- cap_count's, taken after the write).
expire_due()
if ARGV[4] ~= '' and redis.call('EXISTS', P .. ':capx:' .. ARGV[4]) == 1 then
  tell_room()
  return {'cancelled'}
end
if ARGV[1] ~= '' then
  local last = redis.call('ZRANGE', P .. ':' .. ARGV[1], -1, -1)
  if last[1] and tonumber(last[1]) > tonumber(ARGV[2]) then
    tell_room()
    return {'retry'}
  end
end
local n = (#ARGV - 4) / 2
if capacity and live_count() + n > capacity then
  tell_room()
  return {'full', next_expiry()}
end
local expires = false
if ARGV[3] ~= '' then
  expires = now + tonumber(ARGV[3])
end
-- 'fire': written, and the space has rules, which the writer runs (rule_pending).
local out = {rules > 0 and 'fire' or 'ok', expires and string.format('%.17g', expires) or ''}
for i = 1, n do
  out[#out + 1] = put(ARGV[2 * i + 3], ARGV[2 * i + 4], expires)
end
if ARGV[4] ~= '' then
  out[#out + 1] = live_count()
  out[#out + 1] = redis.call('INCR', P .. ':capv')
end
tell_room()
return out

--[[ cap_reserve ]]
-- The capacity of a partitioned space is kept in its first partition: ``cap`` holds
-- the count of each partition q as last read there (``l:<q>``) and the number of that
-- reading (``v:<q>``, see cap_count); ``res`` scores each reservation of room,
-- "<token> <tuples> <its partitions joined by commas>", by the end of its lease.  The
-- tuples counted are those read plus those reserved, never fewer than the space holds:
-- a write is reserved before it is made and its reservation ends once a reading of its
-- partitions has counted it (cap_settle).
-- ARGV: the reservation, its lease in ms.  {'ok'} if the tuples fit (reserved), else
-- {'full', the ms until the next lease of a reservation ends (-1: none), then the
-- reservations whose lease has ended (their writers may have died: cap_count cancels
-- them in their partitions, then cap_settle ends them)}.
local RES = P .. ':res'
local n = tonumber(string.match(ARGV[1], '^%S+ (%d+)'))
if counted() + n <= capacity then
  redis.call('ZADD', RES, now + tonumber(ARGV[2]), ARGV[1])
  return {'ok'}
end
local out = {'full', '-1'}
local first = redis.call('ZRANGEBYSCORE', RES, '-inf', '(+inf', 'WITHSCORES', 'LIMIT', 0, 1)  -- a lease that ends
if first[2] then
  out[2] = string.format('%.17g', math.max(tonumber(first[2]) - now, 0))
end
for _, r in ipairs(redis.call('ZRANGEBYSCORE', RES, '-inf', now, 'LIMIT', 0, 16)) do
  out[#out + 1] = r
end
return out

--[[ cap_count ]]
-- ARGV: the mark of a reservation to cancel here ('' for none).  How many live tuples the
-- partition holds, the number of this reading (readings of a partition are numbered
-- in the order they are made, so the latest holds every write made before it) and the
-- ms until its next lease ends (-1: none).  A
-- write given room by a cancelled reservation is refused (write: {'cancelled'}); the
-- mark lasts an hour, longer than any writer waits between its reservation and its write.
expire_due()
tell_room()
if ARGV[1] ~= '' then
  redis.call('SET', P .. ':capx:' .. ARGV[1], '1', 'PX', 3600000)
end
return {live_count(), redis.call('INCR', P .. ':capv'), next_expiry()}

--[[ cap_settle ]]
-- ARGV: a reservation to end ('' for none), then for each partition read its number,
-- its count and the number of that reading (cap_count); a reading replaces an older one.
local CAP = P .. ':cap'
for i = 2, #ARGV, 3 do
  local q = ARGV[i]
  if tonumber(ARGV[i + 2]) > tonumber(redis.call('HGET', CAP, 'v:' .. q) or '0') then
    redis.call('HSET', CAP, 'l:' .. q, ARGV[i + 1], 'v:' .. q, ARGV[i + 2])
  end
end
if ARGV[1] ~= '' then
  redis.call('ZREM', P .. ':res', ARGV[1])
end
return 1

--[[ find allow-oom ]]
-- ARGV: mode ('scan', 'read', 'take' or 'count'), order, limit (-1: none), batch size,
-- the score to continue after, how many ms a take that finds nothing stays registered
-- for a tuple to be handed over and who it is ("<ms> <who>", then " pop" when its
-- process sent a BLPOP after the script; '': it is not), the
-- transaction a take holds its tuples for ('': none), then the index keys whose
-- intersection holds the candidates.  Such a take's token (who it is) is the first item
-- returned when it registers; when it finds a match instead, with " pop", an empty entry
-- on ``r:<token>`` answers the BLPOP its process sent after the script (it expires in
-- 60 s if that never came).  {'aborted'} if the transaction is not open.
expire_due()
local mode, order, limit, batch, cursor = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local tx = ARGV[7]
if tx ~= '' and not txn_open(tx) then
  tell_room()
  return {'aborted'}
end
local seq = redis.call('GET', SEQ) or '0'

local function none()
  local out = {'', seq, 0}
  if ARGV[6] ~= '' then
    local hold, token = string.match(ARGV[6], '^(%S+) (%S+)')
    redis.call('HSET', W, token, token .. ' ' .. ARGV[3] .. '\n' .. table.concat(ARGV, '\n', 8))
    redis.call('ZADD', P .. ':wq:' .. ARGV[8], redis.call('INCR', WN), token)
    redis.call('ZADD', WEXP, now + tonumber(hold), token)
    due_by(now + tonumber(hold))
    out[1] = token
  end
  tell_room()
  return out
end

local others, driver, size = {}, nil, nil
if #ARGV == 8 and mode ~= 'count' then
  driver = P .. ':' .. ARGV[8]  -- the only key: no size to compare (its walk finds it empty)
else
  for i = 8, #ARGV do
    local key = P .. ':' .. ARGV[i]
    local n = redis.call('ZCARD', key)
    if n == 0 then
      return none()
    end
    if not size or n < size then
      if driver then
        others[#others + 1] = driver
      end
      driver, size = key, n
    else
      others[#others + 1] = key
    end
  end
end
if mode == 'count' and #others == 0 and redis.call('ZCARD', EXP) == 0 then
  return {'', seq, size}
end
local out, found = {'', seq, 0}, 0
-- Picking a few: fetch as many candidates as wanted, then twice as many each time.
local step = batch
if mode ~= 'scan' and limit > 0 and limit < batch then
  step = limit
end
while true do
  local ids
  if order == 'lifo' then
    ids = redis.call('ZREVRANGEBYSCORE', driver, '(' .. cursor, '-inf', 'LIMIT', 0, step)
  else
    ids = redis.call('ZRANGEBYSCORE', driver, '(' .. cursor, '+inf', 'LIMIT', 0, step)
  end
  for _, id in ipairs(ids) do
    cursor = id
    local ok = alive(id)
    for _, key in ipairs(others) do
      if ok and not redis.call('ZSCORE', key, id) then
        ok = false
      end
    end
    if ok then
      found = found + 1
      if mode == 'take' then
        out[#out + 1] = id
        out[#out + 1] = take_for(id, tx)
      elseif mode ~= 'count' then
        out[#out + 1] = id
        out[#out + 1] = encoding(redis.call('HGET', TUP, id))
        if mode == 'read' then
          read = read + 1
        end
      end
      if found == limit then
        local token = string.match(ARGV[6], '^%S+ (%S+) pop$')
        if token then
          local inbox = P .. ':r:' .. token
          redis.call('RPUSH', inbox, '')
          redis.call('PEXPIRE', inbox, 60000)
        end
        out[3] = found
        tell_room()
        return out
      end
    end
  end
  if #ids < step then
    break
  end
  if mode == 'scan' then
    out[1] = cursor
    break
  end
  step = math.min(step * 2, batch)
end
if found == 0 and ARGV[6] ~= '' then
  return none()
end
out[3] = found
tell_room()
return out

--[[ take allow-oom ]]
-- ARGV: the transaction to hold them for ('': none), then the ids to take.  Returns
-- the id and encoding of those still here; {'aborted'} if the transaction is not open.
expire_due()
local tx = ARGV[1]
if tx ~= '' and not txn_open(tx) then
  tell_room()
  return {'aborted'}
end
local out = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local data = alive(id) and take_for(id, tx)
  if data then
    out[#out + 1] = id
    out[#out + 1] = data
  end
end
tell_room()
return out

--[[ unwait allow-oom ]]
-- ARGV: the token of a registered take, and 'restore' to give back what was handed to
-- it, or 'close' to do so and wake it with an empty entry (its space is closing).
-- Ends its registration; what was handed to it (a list, empty: nothing), unless restored.
expire_due()
unregister(ARGV[1])
redis.call('ZREM', WEXP, ARGV[1])
local got = false
if ARGV[2] == 'close' then
  restore(ARGV[1])
  redis.call('RPUSH', P .. ':r:' .. ARGV[1], '')
  redis.call('PEXPIRE', P .. ':r:' .. ARGV[1], 60000)
elseif ARGV[2] == 'restore' then
  restore(ARGV[1])
else
  got = redis.call('LRANGE', P .. ':r:' .. ARGV[1], 0, -1)
  redis.call('DEL', P .. ':r:' .. ARGV[1])
end
tell_room()
return got

--[[ replace ]]
-- ARGV: the id to take, the successor's lease in ms ('' for none), encoding and index keys.
expire_due()
local old = alive(ARGV[1]) and remove(ARGV[1], 'take')
if not old then
  tell_room()
  return {}
end
removed = removed - 1  -- the successor takes its room
local expires = false
if ARGV[2] ~= '' then
  expires = now + tonumber(ARGV[2])
end
local id = put(ARGV[3], ARGV[4], expires)
tell_room()
return {old, id, expires and string.format('%.17g', expires) or ''}

--[[ renew ]]
-- ARGV: the id, its new lease in ms ('' for none).
expire_due()
local id = ARGV[1]
tell_room()
if redis.call('HEXISTS', TUP, id) == 0 or not alive(id) then
  return {0}
end
if ARGV[2] == '' then
  redis.call('ZREM', EXP, id)
  return {1, ''}
end
local expires = now + tonumber(ARGV[2])
redis.call('ZADD', EXP, expires, id)
due_by(expires)
return {1, string.format('%.17g', expires)}

--[[ cancel allow-oom ]]
-- ARGV: the id.
expire_due()
local data = alive(ARGV[1]) and remove(ARGV[1], 'cancel')
if data then
  redis.call('HINCRBY', CNT, 'cancelled', 1)
end
tell_room()
return data and 1 or 0

--[[ statistics +records allow-oom ]]
-- ARGV: the largest arity.  The counts, then the arities of the tuples in the space.
expire_due()
expire_records()
expire_caps()
tell_room()
tell_records()
local arities = {}
for n = 0, tonumber(ARGV[1]) do
  if redis.call('EXISTS', P .. ':a:' .. n) == 1 then
    arities[#arities + 1] = n
  end
end
return {
  live_count(),
  redis.call('ZCOUNT', EXP, '(' .. now, '+inf'),
  redis.call('HGET', CNT, 'expired') or '0',
  redis.call('HGET', CNT, 'cancelled') or '0',
  ev_last,
  ev_n,
  ev_bytes,
  redis.call('ZCARD', TXEXP),
  redis.call('HGET', CNT, 'commits') or '0',
  redis.call('HGET', CNT, 'aborts') or '0',
  redis.call('HLEN', REC) - redis.call('ZCOUNT', REXP, '-inf', now),
  redis.call('HLEN', CAPS),
  redis.call('HLEN', ACCT),
  takes,
  redis.call('HGET', CNT, 'reads') or '0',
  redis.call('HGET', CNT, 'records_expired') or '0',
  redis.call('HLEN', RDIR),
  arities,
}

--[[ tally allow-oom ]]
-- ARGV: how many tuples a process read, having matched them itself (find in mode 'scan').
redis.call('HINCRBY', CNT, 'reads', ARGV[1])
return 1

--[[ events +records allow-oom ]]
-- ARGV: the seq of the last event seen, how many events to return at most, how many
-- bytes of their encodings (the first is returned whatever its size), and the token of
-- the capability a watch reads through, if any.
-- Returns the seq of the latest event (in a partition, at least the caller's: see
-- KEYS[2]; the later events of the partition come after it), that of the oldest
-- logged (0: none), the ms until the next lease of a tuple, a record or the capability
-- ends (-1: none), the id of the latest tuple (every tuple of a later id was written
-- after the latest event), the seq of the latest event dropped from the log (0: none),
-- 1 if the bytes left events out (else 0), then seq, kind, encoding and time of each
-- event after; or {'ended', why} if the capability has ended ('revoked', 'expired' or
-- 'gone').
if ev_last > ev_kept then
  redis.call('HSET', CFG, 'ev_last', ev_last)
end
expire_due()
expire_records()
tell_room()
tell_records()
if ARGV[4] then
  local rid, why = rresolve('$' .. ARGV[4])
  if not rid then
    return {'ended', why}
  end
end
local soonest = next_expiry()
local function sooner(e)  -- a lease that ends at ``e`` (ms; false: none)
  if e then
    local ms = math.max(tonumber(e) - now, 0)
    if soonest == '-1' or ms < tonumber(soonest) then
      soonest = string.format('%.17g', ms)
    end
  end
end
sooner(redis.call('ZRANGE', REXP, 0, 0, 'WITHSCORES')[2] or false)
if ARGV[4] then
  sooner(redis.call('ZSCORE', CAPEXP, ARGV[4]))
end
local out = {ev_last, ev_first, soonest, redis.call('GET', SEQ) or '0', ev_gone, 0}
if tonumber(ARGV[2]) > 0 then
  local room = tonumber(ARGV[3])
  for _, entry in ipairs(redis.call('XRANGE', EV, '(' .. ARGV[1] .. '-0', '+', 'COUNT', ARGV[2])) do
    local f = entry[2]
    if #out > 6 and #f[4] > room then
      out[6] = 1
      break
    end
    room = room - #f[4]
    out[#out + 1] = string.match(entry[1], '^%d+')
    out[#out + 1] = f[2]
    out[#out + 1] = f[4]
    out[#out + 1] = f[6]
  end
end
return out

--[[ first allow-oom ]]
-- ARGV: order, the id to continue after (before, in LIFO order), the id of the latest
-- tuple to consider, then the index keys of the sets of candidates (any of them).
-- Returns the id and encoding of the first tuple alive in one of those sets, in the
-- space's order, or nothing.
expire_due()
tell_room()
local lifo, after, upto = ARGV[1] == 'lifo', tonumber(ARGV[2]), tonumber(ARGV[3])
local best
for i = 4, #ARGV do
  local key, from = P .. ':' .. ARGV[i], '(' .. after
  local to = best or upto
  while true do
    local ids
    if lifo then
      ids = redis.call('ZREVRANGEBYSCORE', key, from, '(' .. (best or 0), 'LIMIT', 0, 16)
    else
      ids = redis.call('ZRANGEBYSCORE', key, from, to, 'LIMIT', 0, 16)
    end
    local found = false
    for _, id in ipairs(ids) do
      if alive(id) then
        best, found = tonumber(id), true
        break
      end
      from = '(' .. id
    end
    if found or #ids < 16 then
      break
    end
  end
end
if not best then
  return {}
end
return {best, encoding(redis.call('HGET', TUP, best))}

--[[ begin allow-oom ]]
-- ARGV: the transaction's lease in ms; for a claim (a server's claimed take), its tag and
-- how many ms past the lease its outcome is remembered.  Its id and expiry.  A claim's
-- ``cl:<tx>`` holds 'a ' and its tag (then 'c ' once confirmed, 'r ' once released or
-- run out: see end_claim).
expire_due()
tell_room()
local tx = redis.call('INCR', TXN)
local expires = now + tonumber(ARGV[1])
redis.call('ZADD', TXEXP, expires, tx)
redis.call('HINCRBY', CFG, 'txns', 1)
if ARGV[2] then
  redis.call('SET', P .. ':cl:' .. tx, 'a ' .. ARGV[2], 'PX', math.ceil(tonumber(ARGV[1]) + tonumber(ARGV[3])))
end
return {tx, string.format('%.17g', expires)}

--[[ commit ]]
-- ARGV: the transaction, then the lease in ms ('' for none), encoding and index keys of
-- each tuple it writes.
return commit()

--[[ settle allow-oom ]]
-- The commit of a transaction that writes nothing (ARGV: the transaction): it frees
-- room, so it runs in a full Redis too.
return commit()

--[[ abort allow-oom ]]
-- ARGV: the transaction, and 'forget' to forget the claim it is (it was given to nobody).
-- 1 if it was open, else 0.
expire_due()
local open = redis.call('ZSCORE', TXEXP, ARGV[1])
if open then
  abort(ARGV[1])
end
if ARGV[2] == 'forget' then
  redis.call('DEL', P .. ':cl:' .. ARGV[1])
end
tell_room()
return open and 1 or 0

--[[ end_claim +records allow-oom ]]
-- ARGV: the transaction of a claim (see begin), its tag, 'confirm' or 'release', how many
-- ms the claim's outcome is remembered.  Confirming commits the transaction (its takes become
-- final) if it is still open; releasing aborts it.  The claim's outcome: 'committed',
-- 'aborted' (released, or its lease ran out), or false if there is no such claim (none
-- with that tag, or forgotten).
expire_due()
local key = P .. ':cl:' .. ARGV[1]
local claim = redis.call('GET', key)
if not claim or string.sub(claim, 3) ~= ARGV[2] then
  tell_room()
  return false
end
local state = string.sub(claim, 1, 1)
if state == 'a' then
  if ARGV[3] == 'confirm' and txn_open(ARGV[1]) then
    confirm_records(ARGV[1])
    settle(ARGV[1])
    state = 'c'
  else
    if redis.call('ZSCORE', TXEXP, ARGV[1]) then
      abort(ARGV[1])
    end
    state = 'r'
  end
  redis.call('SET', key, state .. ' ' .. ARGV[2], 'PX', ARGV[4])
end
tell_room()
tell_records()
return state == 'c' and 'committed' or 'aborted'

--[[ release allow-oom ]]
-- ARGV: the transaction, then the ids of tuples it holds to put back at their place.
-- 1, or 0 if the transaction is not open.
expire_due()
local tx = ARGV[1]
if not txn_open(tx) then
  tell_room()
  return 0
end
local held = P .. ':h:' .. tx
for i = 2, #ARGV do
  if redis.call('HEXISTS', held, ARGV[i]) == 1 then
    give_back(held, ARGV[i])
  end
end
tell_room()
return 1

--[[ renew_txn ]]
-- ARGV: the transaction, its new lease in ms.  Its expiry, or false if it is not open.
expire_due()
tell_room()
if not txn_open(ARGV[1]) then
  return false
end
local expires = now + tonumber(ARGV[2])
redis.call('ZADD', TXEXP, expires, ARGV[1])
return string.format('%.17g', expires)

--[[ expire +records allow-oom ]]
-- Run out the leases that have ended (of tuples, registered takes, transactions and records).
expire_due()
expire_records()
tell_room()
tell_records()
return 1

--[[ rule_add ]]
-- ARGV: name, the version of the rules the caller checked it against, definition, the
-- seq of the latest event of the space ('': of this one; a partitioned space's, read
-- from every partition).  {'ok', version, that seq, how many rules there are},
-- {'stale'} (the rules changed meanwhile) or {'exists'}.
local v = tonumber(redis.call('HGET', CFG, 'rulev') or '0')
if v ~= tonumber(ARGV[2]) then
  return {'stale'}
end
if redis.call('HEXISTS', RULES, ARGV[1]) == 1 then
  return {'exists'}
end
local latest = ARGV[4] == '' and ev_last or tonumber(ARGV[4])
if rules == 0 then  -- the first rule fires from the next event on
  redis.call('HSET', CFG, 'fired', latest)
end
local n = redis.call('HINCRBY', CFG, 'rulen', 1)
redis.call('HSET', RULES, ARGV[1], n .. ' ' .. latest .. ' ' .. ARGV[3])
redis.call('HSET', CFG, 'rulev', v + 1, 'rules', rules + 1)
return {'ok', tostring(v + 1), latest, rules + 1}

--[[ rule_remove ]]
-- ARGV: name.  0 if there is no such rule, else {the version of the rules, how many
-- there are}.
if redis.call('HDEL', RULES, ARGV[1]) == 0 then
  return 0
end
redis.call('HDEL', RST, ARGV[1] .. ' f', ARGV[1] .. ' x', ARGV[1] .. ' e', ARGV[1] .. ' s')
local v = redis.call('HINCRBY', CFG, 'rulev', 1)
redis.call('HSET', CFG, 'rules', rules - 1)
return {tostring(v), rules - 1}

--[[ rule_flag ]]
-- In a partition of a partitioned space but the first.  ARGV: the version of the rules
-- in the first partition, how many there are.  Kept unless a later version is already.
if tonumber(ARGV[1]) > tonumber(redis.call('HGET', CFG, 'rulev') or '0') then
  redis.call('HSET', CFG, 'rulev', ARGV[1], 'rules', ARGV[2])
end
return 1

--[[ rule_owing ]]
-- In the first partition of a partitioned space.  No ARGV.  The version of the rules,
-- the seq of the latest event whose reactions have run, the firing announced ('': none,
-- 'busy': its lease runs, else "<hold> <partitions>": its lease ran out, what it held
-- is to give back, see rule_release), then what firings owe other partitions, each
-- "<seq> <rank> <partition>" and what is owed there (see ``rowe``).
local out = {redis.call('HGET', CFG, 'rulev') or '0', redis.call('HGET', CFG, 'fired') or '0', ''}
local intent = redis.call('GET', P .. ':rint')
if intent then
  local name, where, ends = string.match(intent, '^(%S+) (%S+) (%d+)$')
  out[3] = tonumber(ends) > now and 'busy' or name .. ' ' .. where
end
for _, x in ipairs(redis.call('HGETALL', P .. ':rowe')) do
  out[#out + 1] = x
end
return out

--[[ rule_owed ]]
-- In a partition of a partitioned space but the first (the first too, with a capacity).
-- ARGV: "<seq> <rank> <partition>"
-- of an entry of ``rowe``, what it owes.  Takes the tuples held to take (their take events),
-- gives back those held to give back, makes the writes, once: a mark kept an hour
-- (``rowed:<seq>``) tells that it was done, should another process do it too before
-- the entry is gone (rule_paid).  {1} if done now, {0} if it was already; in a space
-- with a capacity, followed by a reading of the partition's count (see cap_count).
if redis.call('SET', P .. ':rowed:' .. string.match(ARGV[1], '^%S+'), '1', 'NX', 'EX', 3600) == false then
  if capacity then
    return {0, live_count(), redis.call('INCR', P .. ':capv')}
  end
  return {0}
end
expire_due()
local owes = cjson.decode(ARGV[2])
local held = P .. ':h:' .. owes.hold
for _, id in ipairs(owes.take) do
  local kept = redis.call('HGET', held, id)
  if kept then
    takes = takes + 1  -- before the take event logs it
    log('take', encoding(string.match(kept, '^%S* (.*)$')))
    redis.call('HDEL', held, id)
  end
end
if #owes.take > 0 then  -- take events logged, no tuple gone now: subscriptions read on
  redis.call('SPUBLISH', CH, 'r 0')
end
for _, id in ipairs(owes.back) do
  if redis.call('HEXISTS', held, id) == 1 then
    give_back(held, id)
  end
end
for i = 1, #owes.writes, 2 do
  put(owes.writes[i], owes.writes[i + 1], false)
end
tell_room()
if capacity then
  return {1, live_count(), redis.call('INCR', P .. ':capv')}
end
return {1}

--[[ rule_intent ]]
-- In the first partition of a partitioned space.  ARGV: ``fired`` as the caller read it,
-- the name under which it holds what a firing takes in other partitions, those
-- partitions joined by commas, the lease in ms.  Announces the firing (``rint``):
-- {'ok'}; {'moved'} if ``fired`` is another, {'busy'} if a firing is announced already.
if (redis.call('HGET', CFG, 'fired') or '0') ~= ARGV[1] then
  return {'moved'}
end
if redis.call('EXISTS', P .. ':rint') == 1 then
  return {'busy'}
end
redis.call('SET', P .. ':rint', ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. (now + tonumber(ARGV[4])))
return {'ok'}

--[[ rule_hold ]]
-- In a partition of a partitioned space but the first.  ARGV: the name of an announced
-- firing's hold, then the ids of the tuples it takes here.  Holds them (out of the
-- space, no event): {'ok'}; {'retry'} if one is gone (nothing held), {'ended'} if the
-- hold was given back (rule_release) meanwhile.
if redis.call('EXISTS', P .. ':rhx:' .. ARGV[1]) == 1 then
  return {'ended'}
end
expire_due()
for i = 2, #ARGV do
  if not (alive(ARGV[i]) and redis.call('HEXISTS', TUP, ARGV[i]) == 1) then
    tell_room()
    return {'retry'}
  end
end
for i = 2, #ARGV do
  hold(ARGV[i], ARGV[1])
end
tell_room()
return {'ok'}

--[[ rule_release ]]
-- In a partition of a partitioned space but the first.  ARGV: the name of a hold.  Gives
-- back every tuple it holds, to its place, and refuses it from then on (``rhx:<hold>``,
-- kept an hour).
redis.call('SET', P .. ':rhx:' .. ARGV[1], '1', 'EX', 3600)
local held = P .. ':h:' .. ARGV[1]
for _, id in ipairs(held_ids(held)) do
  give_back(held, id)
end
tell_room()
return 1

--[[ rule_intent_end ]]
-- In the first partition of a partitioned space.  ARGV: the name of an announced
-- firing's hold, whose tuples were given back.  Ends the announcement if it is that one.
local intent = redis.call('GET', P .. ':rint')
if intent and string.match(intent, '^%S+') == ARGV[1] then
  redis.call('DEL', P .. ':rint')
end
return 1

--[[ rule_paid ]]
-- In the first partition of a partitioned space.  ARGV: "<seq> <rank> <partition>" of
-- entries of ``rowe`` that were done.
for _, owed in ipairs(ARGV) do
  redis.call('HDEL', P .. ':rowe', owed)
end
return 1

--[[ rule_list ]]
-- ARGV: the version of the rules the caller has.  The version, then (if it is another)
-- the rules, name and what ``rules`` keeps of each; and the counts of ``rst``, field and
-- value.
local out = {redis.call('HGET', CFG, 'rulev') or '0'}
local all = {}
if out[1] ~= ARGV[1] then
  all = redis.call('HGETALL', RULES)
end
out[2] = #all
for _, x in ipairs(all) do
  out[#out + 1] = x
end
for _, x in ipairs(redis.call('HGETALL', RST)) do
  out[#out + 1] = x
end
return out

--[[ rule_pending ]]
-- ARGV: how many events to return at most.  See pending().
expire_due()
tell_room()
return pending(ARGV[1])

--[[ rule_next +records ]]
-- No ARGV.  Remove what has expired (tuples and records, their events logged), then how
-- many ms until the next lease of a tuple or a record ends, -1 if none has one.
expire_due()
expire_records()
tell_room()
tell_records()
local ms = tonumber(next_expiry())
local first = redis.call('ZRANGE', REXP, 0, 0, 'WITHSCORES')
if first[2] then
  local left = math.max(tonumber(first[2]) - now, 0)
  if ms < 0 or left < ms then
    ms = left
  end
end
return math.ceil(ms)

--[[ rule_fire +records ]]
-- ARGV: ``fired`` as the caller read it ('': these are the firing of a Push Logic rule as
-- it is added, of no event), the seq of the event whose reactions these are (those
-- between have none), the version of the rules they were found with, how many events to
-- return at most, the most fields a record may have, the hold of the firing announced
-- (rule_intent; '' for none: then {'busy'} if one is), '1' if the caller has just read
-- the counts of a partitioned space with a capacity (else {'full'} if the firings'
-- tuples may not fit as last counted, changing nothing), then each firing: the rule's name,
-- '' or its failure (JSON), how many tuples it takes and their ids, how many it writes
-- and their encodings and index keys, then, in a partitioned space (else '' and 0), the
-- partition of its tuple ("rule_stopped", ...), how many it writes in other partitions
-- and each one's partition, encoding and index keys (the writes it owes them: see
-- ``rowe``), how many it takes in other partitions and each one's partition and id
-- (held there under the hold of the firing), how many fields it sets and each one's record
-- path, tag and value's encoding, how many records it gives a lease and each one's path
-- and lease in ms ('' for none), how many records it creates and each one's path,
-- fields' encoding and the links they hold (see checked_links), how many records it read
-- and each one's path and version.  All of them happen, in one step, ``fired`` becomes
-- the seq, and the answer is pending()'s (given 0 events to return: of a partitioned
-- space, the version and ``fired``); or none: {'moved'} (another process ran them),
-- {'stale'} (the rules changed), {'retry'} (a tuple to take, or a record to set, is gone,
-- a record read changed, or one a creation links to moved or ended).  A firing whose
-- tuples do not fit in the space fails with SpaceFull, one
-- that would give a record too many fields with ValueTooLarge, one that would create a
-- record at a path taken with RecordExists, changing nothing.
expire_due()
expire_records()
local seq = tonumber(ARGV[2])
if ARGV[1] ~= '' and tonumber(redis.call('HGET', CFG, 'fired') or '0') ~= tonumber(ARGV[1]) then
  tell_room()
  return {'moved'}
end
if (redis.call('HGET', CFG, 'rulev') or '0') ~= ARGV[3] then
  tell_room()
  return {'stale'}
end
local intent = redis.call('GET', P .. ':rint')
if ARGV[1] ~= '' and (intent or ARGV[6] ~= '') then  -- only the firing announced, while its lease runs
  local name, ends = string.match(intent or '', '^(%S+) %S+ (%d+)$')
  if name ~= ARGV[6] or tonumber(ends) <= now then
    tell_room()
    return {'busy'}
  end
  redis.call('DEL', P .. ':rint')
end
local most = tonumber(ARGV[5])
local firings, i = {}, 8
while i <= #ARGV do
  local f = {name = ARGV[i], failure = ARGV[i + 1], takes = {}, writes = {}, sets = {}, leases = {}, creates = {},
    owes = {}, held = {}}
  local n = tonumber(ARGV[i + 2])
  for j = 1, n do
    local id = ARGV[i + 2 + j]
    if not (alive(id) and redis.call('HEXISTS', TUP, id) == 1) then
      tell_room()
      return {'retry'}
    end
    f.takes[j] = id
  end
  i = i + 3 + n
  local m = tonumber(ARGV[i])
  for j = 1, m do
    f.writes[j] = {ARGV[i - 1 + 2 * j], ARGV[i + 2 * j]}
  end
  i = i + 1 + 2 * m
  f.stopped = ARGV[i]
  local o = tonumber(ARGV[i + 1])
  for j = 1, o do
    f.owes[j] = {ARGV[i - 1 + 3 * j], ARGV[i + 3 * j], ARGV[i + 1 + 3 * j]}
  end
  i = i + 2 + 3 * o
  local h = tonumber(ARGV[i])
  for j = 1, h do
    f.held[j] = {ARGV[i - 1 + 2 * j], tonumber(ARGV[i + 2 * j])}
  end
  i = i + 1 + 2 * h
  local k = tonumber(ARGV[i])
  for j = 1, k do
    local rid = redis.call('HGET', RPATH, ARGV[i - 2 + 3 * j])
    if not rget(rid) then
      tell_room()
      return {'retry'}
    end
    f.sets[j] = {rid, ARGV[i - 1 + 3 * j], ARGV[i + 3 * j]}
  end
  i = i + 1 + 3 * k
  local l = tonumber(ARGV[i])
  for j = 1, l do
    local rid = redis.call('HGET', RPATH, ARGV[i - 1 + 2 * j])
    if not rget(rid) then
      tell_room()
      return {'retry'}
    end
    f.leases[j] = {rid, ARGV[i + 2 * j]}
  end
  i = i + 1 + 2 * l
  local c = tonumber(ARGV[i])
  for j = 1, c do
    local links = checked_links(ARGV[i + 3 * j])
    if not links then
      tell_room()
      return {'retry'}
    end
    f.creates[j] = {ARGV[i - 2 + 3 * j], ARGV[i - 1 + 3 * j], links}
  end
  i = i + 1 + 3 * c
  local r = tonumber(ARGV[i])
  for j = 1, r do
    local kept = rget(redis.call('HGET', RPATH, ARGV[i - 1 + 2 * j]))
    if not (kept and rsplit(kept) == ARGV[i + 2 * j]) then
      tell_room()
      return {'retry'}
    end
  end
  i = i + 1 + 2 * r
  firings[#firings + 1] = f
end

-- The failure of setting the fields ``sets``, as JSON, if a record would have more than
-- ``most`` fields; else ''.
local function too_many(sets)
  local tags, counts = {}, {}
  for _, set in ipairs(sets) do
    local rid, tag = set[1], set[2]
    if not tags[rid] then
      local _, _, fields = rsplit(redis.call('HGET', REC, rid))
      tags[rid], counts[rid] = {}, 0
      for t in string.gmatch(fields, FIELD) do
        tags[rid][t], counts[rid] = true, counts[rid] + 1
      end
    end
    if not tags[rid][tag] then
      tags[rid][tag], counts[rid] = true, counts[rid] + 1
      if counts[rid] > most then
        local message = 'the record has ' .. most .. ' tags already, the most it may have'
        return cjson.encode({class = 'ValueTooLarge', message = message, reason = message, path = tag,
          limit = 'max_fields', maximum = most})
      end
    end
  end
  return ''
end

-- In a partitioned space with a capacity, the tuples counted in the space, less those
-- the firings take and with those they write (all of which, in this partition too, are
-- owed: see keep_owed).
local spread = KEYS[2] and capacity and counted()
if spread and ARGV[7] == '' then  -- counts older than the takes since may make it seem full
  local more = 0
  for _, f in ipairs(firings) do
    more = more + #f.writes + #f.owes + 1  -- and a tuple telling that its rule stopped
  end
  if spread + more > capacity then
    tell_room()
    return {'full'}
  end
end
for _, f in ipairs(firings) do
  local failure = f.failure
  local change = #f.writes + #f.owes - #f.takes - #f.held
  if failure == '' and capacity and (spread or live_count()) + change > capacity then
    failure = cjson.encode({class = 'SpaceFull', limit = 'capacity', maximum = capacity,
      message = "the reaction's tuples do not fit: the space holds " .. capacity .. ', its capacity'})
  end
  if failure == '' and firing_charge ~= '0' then
    local elsewhere = nil
    if f.stopped ~= '' and (f.stopped ~= '0' or spread) then
      elsewhere = function(data, keys)
        owe(f.stopped, data, keys)
      end
    end
    failure = pay_firing(f.name, elsewhere)
  end
  if failure == '' then
    failure = too_many(f.sets)
  end
  for _, made in ipairs(f.creates) do
    if failure == '' and rtaken(made[1]) then
      local message = 'a record already has the path ' .. cjson.encode(made[1]) .. '; nothing changed'
      failure = cjson.encode({class = 'RecordExists', message = message})
    end
  end
  for _, held in ipairs(f.held) do  -- taken there if the firing is done, else given back
    local owes = owing_to(held[1])
    owes.hold = ARGV[6]
    local ids = failure == '' and owes.take or owes.back
    ids[#ids + 1] = held[2]
  end
  if failure == '' then
    for _, id in ipairs(f.takes) do
      remove(id, 'take')
    end
    for _, w in ipairs(f.writes) do
      put(w[1], w[2], false)
    end
    for _, w in ipairs(f.owes) do
      owe(w[1], w[2], w[3])
    end
    for _, set in ipairs(f.sets) do
      if redis.call('HGET', P .. ':rk:' .. set[1], set[2]) then
        unlink(set[1], set[2])
      end
      rwrite(set[1], set[2], set[3], false)
    end
    for _, lease in ipairs(f.leases) do
      if lease[2] == '' then
        redis.call('ZREM', REXP, lease[1])
      else
        redis.call('ZADD', REXP, now + tonumber(lease[2]), lease[1])
      end
    end
    for _, made in ipairs(f.creates) do
      drop_redirect(made[1])
      local rid = redis.call('INCR', RN)
      rstore(rid, made[1], made[2])
      for _, l in ipairs(made[3]) do
        link(rid, l[1], l[2])
      end
      rlog('create', rid, 1, made[1], '', made[2])
    end
    redis.call('HINCRBY', RST, f.name .. ' f', 1)
    spread = spread and spread + change
  else
    redis.call('HINCRBY', RST, f.name .. ' x', 1)
    redis.call('HSET', RST, f.name .. ' e', failure)
  end
end
if ARGV[1] ~= '' then
  redis.call('HSET', CFG, 'fired', seq)
end
keep_owed(ARGV[1] ~= '' and seq or nil)
tell_room()
tell_records()
return pending(ARGV[4])

--[[ rcreate +records ]]
-- ARGV: path, lease in ms ('' for none), the fields, the links they hold ("<tag> <rid>
-- <path>" joined by newlines, see checked_links), the credit it holds ('' for none), the
-- principal who pays.  {rid} (and 'fire' if the space has rules, as after each change
-- below), {'exists'} if a record has the path, {'retry'} if a record linked to moved or
-- ended meanwhile, {'short', the principal's balance, the cost} if it cannot pay,
-- {'unfunded'} if the space charges for storage and the record would hold nothing.  With
-- a charge rate, a lease buys the credit to store the record that long.
expire_records()
local path = ARGV[1]
local links = checked_links(ARGV[4])
local held = big(ARGV[5] == '' and '0' or ARGV[5])
local size = rsize(path, ARGV[3])
if charge_rate ~= '0' and ARGV[2] ~= '' then
  held = badd(held, burned(size, micros(tonumber(ARGV[2]))))
end
local out
if rtaken(path) then
  out = {'exists'}
elseif not links then
  out = {'retry'}
elseif charge_rate ~= '0' and bcmp(held, ZERO) == 0 then
  out = {'unfunded'}
elseif charging then
  local cost = badd(held, big(creation_charge))
  local short = debit(ARGV[6], cost)
  if short then
    out = {'short', short, bstr(cost)}
  else
    burn(big(creation_charge))
  end
end
if not out then
  drop_redirect(path)  -- a record created at a path a record moved from takes it over
  local rid = redis.call('INCR', RN)
  rstore(rid, path, ARGV[3])
  for _, l in ipairs(links) do
    link(rid, l[1], l[2])
  end
  if charge_rate ~= '0' then
    redis.call('HSET', RCR, rid, bstr(held))
    rsettle(rid, size)
  elseif ARGV[2] ~= '' then
    redis.call('ZADD', REXP, now + tonumber(ARGV[2]), rid)
  end
  if charge_rate == '0' and ARGV[5] ~= '' then
    redis.call('HSET', RCR, rid, ARGV[5])
  end
  rlog('create', rid, 1, path, '', ARGV[3])
  out = with_rules({rid})
end
tell_records()
return out

--[[ rget +records ]]
-- ARGV: 'rid' or 'path', then the rid (or "$<token>") or the path, '1' to compute its
-- level, and the principal who pays ``cfg``'s ``redirect_charge`` (burned) for a path
-- a record moved away from ('' or none: nobody).  {rid, what ``rec`` keeps, the ms left
-- of its lease ('' for none), how many records contain it, its level (0 unless asked),
-- the credit it holds}, {} if no record is there, {'revoked'}, {'expired'} or {'gone'}
-- if the capability has ended, {'short', the principal's balance, the cost} if it
-- cannot pay.
expire_records()
tell_records()
local rid, why = ARGV[2], nil
if ARGV[1] == 'rid' then
  rid, why = rresolve(ARGV[2])
  if not rid then
    return {why}
  end
elseif ARGV[1] == 'path' then
  rid = redis.call('HGET', RPATH, ARGV[2])
  if not rget(rid) then
    local e = redis.call('ZSCORE', RDIREXP, ARGV[2])
    rid = (not e or tonumber(e) > now) and redis.call('HGET', RDIR, ARGV[2])
    local charge = redis.call('HGET', CFG, 'redirect_charge') or '0'
    if rid and rget(rid) and (ARGV[4] or '') ~= '' and charge ~= '0' then
      local cost = big(charge)
      local short = debit(ARGV[4], cost)
      if short then
        return {'short', short, charge}
      end
      burn(cost)
    end
  end
end
local kept = rget(rid)
if not kept then
  return {}
end
local e = redis.call('ZSCORE', REXP, rid)
return {rid, kept, e and string.format('%.17g', tonumber(e) - now) or '', redis.call('HLEN', P .. ':rc:' .. rid),
  ARGV[3] == '1' and level(rid) or 0, bstr((rcredit(rid)))}

--[[ rset +records ]]
-- ARGV: rid (or "$<token>"), the tag, its value's encoding, the most fields a record may have, and the
-- link the value is ("<tag> <rid> <path>", see checked_links; '' for none).  {the new
-- version} (and 'fire'); {} if the record is gone, {'full'} if it has that many fields already,
-- {'cycle'} if it would contain itself, {'retry'} if the record linked to moved or
-- ended meanwhile; {'revoked'}, {'expired'} or {'gone'} if the capability has ended.
expire_records()
local rid, why = rresolve(ARGV[1])
local tag = ARGV[2]
local links = checked_links(ARGV[5])
local out
if not rid then
  out = {why}
elseif not rget(rid) then
  out = {}
elseif not links then
  out = {'retry'}
elseif links[1] and reaches(links[1][2], rid) then
  out = {'cycle'}
else
  local held = redis.call('HGET', P .. ':rk:' .. rid, tag)
  local version = rwrite(rid, tag, ARGV[3], tonumber(ARGV[4]))
  if not version then
    out = {'full'}
  else
    if held then
      unlink(rid, tag)
    end
    if links[1] then
      link(rid, tag, links[1][2])
    end
    out = with_rules({version})
  end
end
tell_records()
return out

--[[ rcall +records ]]
-- ARGV: rid (or "$<token>"), the version the record must have, the number n of fields a
-- method set, n tags and their values' encodings, the number c of records it created, c
-- paths, their fields' encodings and the links they hold (see checked_links), then the
-- partition ('' in a space without partitions), encoding and index keys of each tuple it
-- wrote.  The tuples are written (those of other partitions owed to them, and in a
-- partitioned space with a capacity those of this one too, see ``rowe``; 'owed' is then
-- the reply's third item), the records created, then each field set (an update event
-- each): {'ok', the new version}, {'fire', the new version} if the space has rules;
-- {'retry'} if the record has another version (or a record a creation links to moved or
-- ended), {'full'} if the space has no room for
-- the tuples, {'exists', path} if a record has a path it would create, {} if the record
-- is gone; {'revoked'}, {'expired'} or {'gone'} if the capability has ended.
expire_due()
expire_records()
local rid, why = rresolve(ARGV[1])
local kept = rid and rget(rid)
local n = tonumber(ARGV[3])
local c = tonumber(ARGV[4 + 2 * n])
local made = 5 + 2 * n
local tuples = (#ARGV - 4 - 2 * n - 3 * c) / 3
local taken, links = false, {}
for i = 1, c do
  if not taken and rtaken(ARGV[made + 3 * i - 3]) then
    taken = ARGV[made + 3 * i - 3]
  end
  links[i] = checked_links(ARGV[made + 3 * i - 1])
  if not links[i] then
    links = false
    break
  end
end
local out
if not rid then
  out = {why}
elseif not kept then
  out = {}
elseif rsplit(kept) ~= ARGV[2] or not links then
  out = {'retry'}
elseif tuples > 0 and capacity and (KEYS[2] and counted() or live_count()) + tuples > capacity then
  tell_room()
  out = {'full'}
elseif taken then
  out = {'exists', taken}
else
  local first = made + 3 * c
  for i = 1, tuples do
    local q, data, keys = ARGV[first + 3 * i - 3], ARGV[first + 3 * i - 2], ARGV[first + 3 * i - 1]
    if q == '' or (q == '0' and not (KEYS[2] and capacity)) then  -- else counted in, see keep_owed
      put(data, keys, false)
    else
      owe(q, data, keys)
    end
  end
  keep_owed(nil)
  for i = 1, c do
    local path, fields = ARGV[made + 3 * i - 3], ARGV[made + 3 * i - 2]
    drop_redirect(path)
    local new = redis.call('INCR', RN)
    rstore(new, path, fields)
    for _, l in ipairs(links[i]) do
      link(new, l[1], l[2])
    end
    rlog('create', new, 1, path, '', fields)
  end
  local version = tonumber(ARGV[2])
  for i = 1, n do
    local tag = ARGV[2 + 2 * i]
    if redis.call('HGET', P .. ':rk:' .. rid, tag) then
      unlink(rid, tag)
    end
    version = rwrite(rid, tag, ARGV[3 + 2 * i], false)
  end
  if tuples > 0 then
    tell_room()
  end
  out = {rules > 0 and 'fire' or 'ok', version}
  if #owing > 0 then
    out[3] = 'owed'
  end
end
tell_records()
return out

--[[ rdestroy +records ]]
-- ARGV: rid (or "$<token>"), the version it must have ('' for any), 'force' to destroy it
-- even if records contain it, the claim ('' for none) that holds it instead (see
-- give_back_records).  {version, path, fields} of the record removed (and 'fire'), {'retry'}
-- if its version is another, {'inuse'} if records contain it, {} if it is gone,
-- {'revoked'}, {'expired'} or {'gone'} if the capability has ended, {'aborted'} if the claim has.
expire_records()
local rid, why = rresolve(ARGV[1])
local kept = rid and rget(rid)
local out = {}
local tx = ARGV[4] or ''
if tx ~= '' and not txn_open(tx) then
  out = {'aborted'}
elseif not rid then
  out = {why}
elseif kept and ARGV[2] ~= '' and rsplit(kept) ~= ARGV[2] then
  out = {'retry'}
elseif kept and ARGV[3] ~= 'force' and redis.call('EXISTS', P .. ':rc:' .. rid) == 1 then
  out = {'inuse'}
elseif kept and tx ~= '' then
  out = rhold(rid, kept, tx)
elseif kept then
  out = with_rules(rremove(rid, 'destroy'))
end
tell_room()
tell_records()
return out

--[[ rmove +records ]]
-- ARGV: rid, its new path, how many ms the old path redirects to it ('': as long as it
-- lives; '0': not at all), the start of the addresses of the space's records.  {its new
-- version} (and 'fire'), {'exists'} if a record has the path, {} if it is gone.  The fields that hold
-- it get its new address (an update event each).
expire_records()
local rid, to = ARGV[1], ARGV[2]
local kept = rget(rid)
local out = {}
if kept and rtaken(to) then
  out = {'exists'}
elseif kept then
  local version, path, fields, keys = rsplit(kept)
  version = tonumber(version) + 1
  if charge_rate ~= '0' then
    rsettle(rid, rsize(to, fields))
  end
  redis.call('HSET', REC, rid, version .. ' ' .. to .. '\n' .. fields .. '\n' .. keys)
  redis.call('HDEL', RPATH, path)
  redis.call('HSET', RPATH, to, rid)
  drop_redirect(to)
  if ARGV[3] ~= '0' then
    redis.call('HSET', RDIR, path, rid)
    redis.call('SADD', P .. ':rd:' .. rid, path)
    if ARGV[3] ~= '' then
      redis.call('ZADD', RDIREXP, now + tonumber(ARGV[3]), path)
    end
  end
  rlog('move', rid, version, to, '', '"' .. path .. '"')
  for _, held in ipairs(holders(rid)) do
    rwrite(held[1], held[2], '{"$uri":"' .. ARGV[4] .. to .. '"}')
  end
  out = with_rules({version})
end
tell_records()
return out

--[[ rtop +records ]]
-- ARGV: the rid to continue after, how many records to look at.  {the rid to continue
-- after ('': none left), then the path of each record alive that no record contains}.
expire_records()
tell_records()
local batch = tonumber(ARGV[2])
local rids = redis.call('ZRANGEBYSCORE', P .. ':ra', '(' .. ARGV[1], '+inf', 'LIMIT', 0, batch)
local out = {rids[batch] or ''}
for _, rid in ipairs(rids) do
  if ralive(rid) and redis.call('EXISTS', P .. ':rc:' .. rid) == 0 then
    out[#out + 1] = select(2, rsplit(redis.call('HGET', REC, rid)))
  end
end
return out

--[[ rrenew +records ]]
-- ARGV: rid (or "$<token>"), its new lease in ms ('' for none; 'keep' to keep it), the
-- credit to add to what it holds ('' for none), the principal who pays it.  {1, its
-- expiry in ms ('': none)}, {0} if
-- it is gone, {'revoked'}, {'expired'} or {'gone'} if the capability has ended, {'short',
-- the principal's balance, the cost} if it cannot pay, {'forever'} if the space charges
-- for storage and the lease is none.  With a charge rate, a lease buys the credit the
-- record lacks to live that long, and the credit held sets the expiry.
expire_records()
tell_records()
local rid, why = rresolve(ARGV[1])
if not rid then
  return {why}
end
local kept = rget(rid)
if not kept then
  return {0}
end
local add = big(ARGV[3] == '' and '0' or ARGV[3])
if charge_rate ~= '0' then
  if ARGV[2] == '' then
    return {'forever'}
  end
  local size = tonumber(string.match(redis.call('HGET', RCH, rid), ' (%d+)$'))
  if ARGV[2] ~= 'keep' then
    local need, left = burned(size, micros(tonumber(ARGV[2]))), rcredit(rid)
    if bcmp(need, left) > 0 then
      add = badd(add, bsub(need, left))
    end
  end
  local short = debit(ARGV[4], add)
  if short then
    return {'short', short, bstr(add)}
  end
  rsettle(rid, size)
  redis.call('HSET', RCR, rid, bstr(badd(big(redis.call('HGET', RCR, rid)), add)))
  rsettle(rid, size)
  return {1, redis.call('ZSCORE', REXP, rid) or ''}
end
if charging then
  local short = debit(ARGV[4], add)
  if short then
    return {'short', short, bstr(add)}
  end
end
if ARGV[2] == '' then
  redis.call('ZREM', REXP, rid)
elseif ARGV[2] ~= 'keep' then
  redis.call('ZADD', REXP, now + tonumber(ARGV[2]), rid)
end
if ARGV[3] ~= '' then
  redis.call('HSET', RCR, rid, bstr(badd(big(redis.call('HGET', RCR, rid) or '0'), add)))
end
return {1, redis.call('ZSCORE', REXP, rid) or ''}

--[[ rgrant +records ]]
-- ARGV: rid, the operations joined by commas, the lease in ms ('' for none), a new
-- token, 'ro' for the record's read-only handle (the one it has, if any).  {token, the
-- end of its lease in ms ('': none)}, or {} if the record is gone.
expire_records()
tell_records()
local rid = ARGV[1]
if not rget(rid) then
  return {}
end
if ARGV[5] == 'ro' then
  local token = redis.call('HGET', RO, rid)
  if token then
    return {token, ''}
  end
  redis.call('HSET', RO, rid, ARGV[4])
end
redis.call('HSET', CAPS, ARGV[4], rid .. ' ' .. ARGV[2])
redis.call('SADD', P .. ':rcaps:' .. rid, ARGV[4])
if ARGV[3] ~= '' then
  redis.call('ZADD', CAPEXP, now + tonumber(ARGV[3]), ARGV[4])
  return {ARGV[4], string.format('%.17g', now + tonumber(ARGV[3]))}
end
return {ARGV[4], ''}

--[[ rcap +records ]]
-- ARGV: a token.  {rid, the operations joined by commas, the ms left of its lease ('' for
-- none)}, or {'revoked'}, {'expired'} or {'gone'} if the capability has ended.
expire_records()
tell_records()
local rid, why = rresolve('$' .. ARGV[1])
if not rid then
  return {why}
end
local e = redis.call('ZSCORE', CAPEXP, ARGV[1])
return {rid, string.match(redis.call('HGET', CAPS, ARGV[1]), ' (.*)$'),
  e and string.format('%.17g', tonumber(e) - now) or ''}

--[[ rrevoke +records ]]
-- ARGV: a token.  End that capability, and tell the processes listening ("c"): the
-- watches opened through it end.
expire_records()
tell_records()
if drop_cap(ARGV[1]) then
  redis.call('SPUBLISH', CH, 'c')
end
return 1

--[[ rscan +records ]]
-- ARGV: how many candidates to look at, then groups of: the rid to continue after, the
-- index keys whose intersection holds the candidates, ''.  For each group, at one
-- instant: {the rid to continue after ('': none left), then rid and what ``rec``
-- keeps of each candidate alive}, oldest first.
expire_records()
tell_records()
local batch = tonumber(ARGV[1])

local function scan(after, first, last)
  local others, driver, size = {}, nil, nil
  for i = first, last do
    local key = P .. ':' .. ARGV[i]
    local n = redis.call('ZCARD', key)
    if n == 0 then
      return {''}
    end
    if not size or n < size then
      if driver then
        others[#others + 1] = driver
      end
      driver, size = key, n
    else
      others[#others + 1] = key
    end
  end
  local rids = redis.call('ZRANGEBYSCORE', driver, '(' .. after, '+inf', 'LIMIT', 0, batch)
  local out = {rids[batch] or ''}
  for _, rid in ipairs(rids) do
    local ok = ralive(rid)
    for _, key in ipairs(others) do
      if ok and not redis.call('ZSCORE', key, rid) then
        ok = false
      end
    end
    if ok then
      out[#out + 1] = rid
      out[#out + 1] = redis.call('HGET', REC, rid)
    end
  end
  return out
end

local out, start = {}, 2
for i = 2, #ARGV do
  if ARGV[i] == '' then
    out[#out + 1] = scan(ARGV[start], start + 1, i - 1)
    start = i + 1
  end
end
return out


--[[ account +records ]]
-- ARGV: a principal.  Its balance (the operator's counts what the records drained).
return bstr(balance(ARGV[1]))

--[[ grant +records ]]
-- ARGV: a principal, an amount, the most accounts the space keeps, the largest balance.
-- {its new balance}, {'full'} if it would be an account past the most, {'large'} if the
-- balance would be larger than allowed.
return credit(ARGV[1], ARGV[2], ARGV[3], ARGV[4])

--[[ transfer +records ]]
-- ARGV: source, target, an amount, the most accounts the space keeps, the largest
-- balance.  {the new balance of source}, {'short', its balance} if it holds less,
-- {'full'} or {'large'} as for grant.  The operator's account holds what the records
-- drained: they settle before it pays.
local amount = big(ARGV[3])
local have = balance(ARGV[1])
if bcmp(have, amount) < 0 then
  return {'short', bstr(have)}
end
local other = redis.call('HGET', ACCT, ARGV[2])
if not other and ARGV[2] ~= operator and redis.call('HLEN', ACCT) >= tonumber(ARGV[4]) then
  return {'full'}
end
if ARGV[1] ~= ARGV[2] and tonumber(other or '0') + tonumber(ARGV[3]) > tonumber(ARGV[5]) then
  return {'large'}
end
debit(ARGV[1], amount)
redis.call('HINCRBY', ACCT, ARGV[2], ARGV[3])
return {bstr(balance(ARGV[1]))}

--[[ challenge ]]
-- ARGV: a new random text, how many ms a challenge is given out.  The challenge given out
-- now and the ms until it is no longer accepted (twice as long as it is given out).
-- ``cfg`` holds the one given out and until when (``mint``: "<ms> <text>"); ``mc:<text>``
-- exists while a challenge is accepted, and ``ms:<text>`` holds the nonces spent on it.
local cur = redis.call('HGET', CFG, 'mint')
if cur then
  local till, text = string.match(cur, '^(%d+) (.*)$')
  local left = redis.call('PTTL', P .. ':mc:' .. text)
  if tonumber(till) > now and left > 0 then
    return {text, left}
  end
end
redis.call('SET', P .. ':mc:' .. ARGV[1], '1', 'PX', 2 * tonumber(ARGV[2]))
redis.call('HSET', CFG, 'mint', (now + tonumber(ARGV[2])) .. ' ' .. ARGV[1])
return {ARGV[1], 2 * tonumber(ARGV[2])}

--[[ mint +records ]]
-- ARGV: a challenge, a nonce (a stamp on it), a principal, the amount it mints, the most
-- stamps a challenge pays for, then as for grant, then 'bad' for a stamp found wanting
-- (only the challenge is looked at).  {its new balance}, {'stale'} if the challenge is
-- not accepted, {'bad'} for a bad stamp, {'spent'} if the stamp was, {'exhausted'} if the
-- challenge has paid for the most, {'full'} or {'large'} as for grant.
local left = redis.call('PTTL', P .. ':mc:' .. ARGV[1])
if left <= 0 then
  return {'stale'}
end
if ARGV[8] == 'bad' then
  return {'bad'}
end
local spent = P .. ':ms:' .. ARGV[1]
if redis.call('SISMEMBER', spent, ARGV[2]) == 1 then
  return {'spent'}
end
if redis.call('SCARD', spent) >= tonumber(ARGV[5]) then
  return {'exhausted'}
end
local out = credit(ARGV[3], ARGV[4], ARGV[6], ARGV[7])
if out[1] ~= 'full' and out[1] ~= 'large' then
  redis.call('SADD', spent, ARGV[2])
  redis.call('PEXPIRE', spent, left)
end
return out
