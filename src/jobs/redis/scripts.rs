//! The Lua scripts of the Redis broker. Each one is a state change applied atomically by
//! redis-server (no other command runs between its steps), so the indexes below never
//! disagree with the job hashes whatever the number of nodes.
//!
//! Every script gets `KEYS[1]` = the broker's key prefix (ending in `{jobs}:`) and builds
//! the other keys from it; all of them share the `{jobs}` hash tag (one Redis Cluster
//! slot). Times are milliseconds since the epoch, passed by the caller (a broker never
//! reads a clock).
//!
//! Keys (`P` = the prefix):
//! - `P j:<id>`: the job hash. `j` = the record's JSON as last written by Rust; the fields
//!   that scripts change on their own override it when read: `st` status, `a` attempts,
//!   `w` worker, `lu` lease end, `sa` started, `fa` finished, `rsn` reason, `cr` cancel
//!   requested, `pid` progress id, `sq` enqueue sequence. Index data: `q`, `n`, `p`
//!   (priority), `ra` (run_at), `to` (timeout s), `uk`/`uf` (unique key and its seconds),
//!   `wd` (unfinished dependencies), `loc` (the set holding it: `r` ready, `d` delayed,
//!   `a` active, `w` waiting, `f` final, `x` none), `ix` (the status it is indexed under),
//!   `rm` (its member in the ready set), `rev` (bumped by every change a decision in Rust
//!   depends on: Rust reads, decides with `lifecycle::next_state`, and `APPLY` writes only
//!   if `rev` is unchanged), `inp` (`1` while run by an in-process pool).
//! - `P r:<queue>:<name>`: ready jobs; score `(9 - priority) * 1e13 + run_at`, member
//!   `<seq, 16 digits>|<id>`, so the first member is the most urgent, FIFO within a
//!   priority. `P rn:<queue>`: names with ready jobs. `P ra:<queue>`: ready ids by run_at
//!   (the oldest ready job).
//! - `P d`: delayed ids by run_at. `P a`: running ids by lease end (any node reaps).
//! - `P dep:<id>`: ids waiting on job `id`. `P cascade`: `<id>\n<reason>` of dependants
//!   to cancel because a dependency ended dead or cancelled (worked off by ticks).
//! - Listing (score = seq): `P all`, `P s:<status>`, `P q:<queue>`, `P qs:<queue>:<status>`
//!   (also the counts). Final jobs by finish time: `P f:<status>` (retention), `P
//!   fc:<queue>` (completions per minute).
//! - `P queues`, `P paused` (sets), `P seq` (counter), `P u:<key>` (unique key →
//!   `<id>|<held until, ms>`, the time empty while held until the job is final), `P
//!   sched` / `P schedkey` (schedules: JSON, and `<next_run>|<cron>` for the fired-slot
//!   check).

use ::redis::Script;
use std::sync::LazyLock;

/// Functions shared by the scripts: placing a job into the set its state calls for,
/// taking it out, and what a final state sets off (unique key, dependants).
const LIB: &str = r#"
local P = KEYS[1]
local FINAL = {completed = true, dead = true, cancelled = true}
local ready_out = {}
local function jk(id) return P .. 'j:' .. id end

local function set_status(id, k, new, q, sq)
  local old = redis.call('HGET', k, 'ix')
  if old == new then return end
  if old and old ~= '' then
    redis.call('ZREM', P .. 's:' .. old, id)
    redis.call('ZREM', P .. 'qs:' .. q .. ':' .. old, id)
  end
  redis.call('ZADD', P .. 's:' .. new, sq, id)
  redis.call('ZADD', P .. 'qs:' .. q .. ':' .. new, sq, id)
  redis.call('HSET', k, 'ix', new, 'st', new)
end

local function unplace(id)
  local k = jk(id)
  local h = redis.call('HMGET', k, 'loc', 'q', 'n', 'rm', 'st')
  local loc, q, n = h[1], h[2], h[3]
  if loc == 'r' then
    local rk = P .. 'r:' .. q .. ':' .. n
    redis.call('ZREM', rk, h[4])
    redis.call('ZREM', P .. 'ra:' .. q, id)
    if redis.call('ZCARD', rk) == 0 then redis.call('SREM', P .. 'rn:' .. q, n) end
  elseif loc == 'd' then
    redis.call('ZREM', P .. 'd', id)
  elseif loc == 'a' then
    redis.call('ZREM', P .. 'a', id)
  elseif loc == 'f' then
    redis.call('ZREM', P .. 'f:' .. h[5], id)
    redis.call('ZREM', P .. 'fc:' .. q, id)
  end
  redis.call('HSET', k, 'loc', 'x')
end

local function place(id, now)
  local k = jk(id)
  local h = redis.call('HMGET', k, 'st', 'q', 'n', 'p', 'ra', 'wd', 'sq', 'lu', 'fa')
  local st, q, n = h[1], h[2], h[3]
  local p, ra, wd, sq = tonumber(h[4]), tonumber(h[5]), tonumber(h[6]) or 0, tonumber(h[7])
  local new = st
  if FINAL[st] then
    local fa = tonumber(h[9]) or now
    redis.call('ZADD', P .. 'f:' .. st, fa, id)
    if st == 'completed' then redis.call('ZADD', P .. 'fc:' .. q, fa, id) end
    redis.call('HSET', k, 'loc', 'f')
  elseif st == 'running' then
    redis.call('ZADD', P .. 'a', tonumber(h[8]) or now, id)
    redis.call('HSET', k, 'loc', 'a')
  elseif wd > 0 then
    new = 'pending'
    redis.call('HSET', k, 'loc', 'w')
  elseif ra > now then
    if st ~= 'failed' then new = 'scheduled' end
    redis.call('ZADD', P .. 'd', ra, id)
    redis.call('HSET', k, 'loc', 'd')
  else
    new = 'pending'
    local rm = string.format('%016d', sq) .. '|' .. id
    redis.call('ZADD', P .. 'r:' .. q .. ':' .. n, (9 - p) * 1e13 + ra, rm)
    redis.call('ZADD', P .. 'ra:' .. q, ra, id)
    redis.call('SADD', P .. 'rn:' .. q, n)
    redis.call('HSET', k, 'loc', 'r', 'rm', rm)
    ready_out[#ready_out + 1] = q
    ready_out[#ready_out + 1] = n
  end
  set_status(id, k, new, q, sq)
end

local function on_final(id, st, now)
  local k = jk(id)
  local h = redis.call('HMGET', k, 'uk', 'uf')
  if h[1] and h[1] ~= '' and h[2] == '' and redis.call('GET', P .. 'u:' .. h[1]) == id .. '|' then
    redis.call('DEL', P .. 'u:' .. h[1])
  end
  local waiters = redis.call('SMEMBERS', P .. 'dep:' .. id)
  redis.call('DEL', P .. 'dep:' .. id)
  for _, w in ipairs(waiters) do
    if redis.call('EXISTS', jk(w)) == 1 then
      if st == 'completed' then
        local left = redis.call('HINCRBY', jk(w), 'wd', -1)
        if left <= 0 and redis.call('HGET', jk(w), 'loc') == 'w' then place(w, now) end
      else
        redis.call('RPUSH', P .. 'cascade', w .. '\n' .. 'dependency ' .. id .. ' ended ' .. st)
      end
    end
  end
end

local function cancel_now(id, reason, now)
  local k = jk(id)
  local st = redis.call('HGET', k, 'st')
  if not st or FINAL[st] or st == 'running' then return false end
  unplace(id)
  redis.call('HSET', k, 'st', 'cancelled', 'rsn', reason, 'fa', now, 'lu', '', 'cr', '')
  redis.call('HINCRBY', k, 'rev', 1)
  place(id, now)
  on_final(id, 'cancelled', now)
  return true
end

local function promote(now, limit)
  local due = redis.call('ZRANGEBYSCORE', P .. 'd', '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(due) do
    redis.call('ZREM', P .. 'd', id)
    redis.call('HSET', jk(id), 'loc', 'x')
    place(id, now)
  end
end

local function remove_final(id, st)
  local q = redis.call('HGET', jk(id), 'q') or ''
  for _, z in ipairs({'all', 's:' .. st, 'q:' .. q, 'qs:' .. q .. ':' .. st, 'f:' .. st, 'fc:' .. q}) do
    redis.call('ZREM', P .. z, id)
  end
  redis.call('DEL', jk(id), P .. 'dep:' .. id)
end

local ROW = {'j', 'st', 'a', 'w', 'lu', 'sa', 'fa', 'rsn', 'cr', 'pid', 'sq', 'rev', 'inp'}
local function row(id)
  local r = redis.call('HMGET', jk(id), unpack(ROW))
  if not r[1] then return {} end
  return r
end
"#;

fn with_lib(body: &str) -> Script {
    Script::new(&format!("{LIB}\n{body}"))
}

/// Reads jobs. ARGV: ids. Returns one row per id (empty when there is none): the fields
/// of `ROW` in order (see [`super::record`]).
pub static READ: LazyLock<Script> = LazyLock::new(|| {
    with_lib(
        r#"
local out = {}
for i = 1, #ARGV do out[i] = row(ARGV[i]) end
return out
"#,
    )
});

/// Enqueues a batch, all or nothing. ARGV: now, then per job: id, chosen (`1`/`0`),
/// unique key, unique_for seconds, queue, name, priority, run_at, timeout, JSON, the
/// number of dependencies and the dependencies. Returns `{'missing', i, k, dep}` when a
/// dependency does not exist (nothing written), else `{answers, ready, cancelled, fresh}`:
/// answers = (existing, id, status) per request; cancelled = ids cancelled at once (a
/// dependency had ended dead or cancelled); fresh = (id, seq) per new job.
pub static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    with_lib(
        r#"
local now = tonumber(ARGV[1])
local jobs, i = {}, 2
while i <= #ARGV do
  local jb = {id = ARGV[i], chosen = ARGV[i + 1], uk = ARGV[i + 2], uf = ARGV[i + 3], q = ARGV[i + 4], n = ARGV[i + 5],
              p = ARGV[i + 6], ra = ARGV[i + 7], to = ARGV[i + 8], j = ARGV[i + 9], deps = {}}
  local nd = tonumber(ARGV[i + 10])
  i = i + 11
  for d = 1, nd do jb.deps[d] = ARGV[i]; i = i + 1 end
  jobs[#jobs + 1] = jb
end
local batch = {}
for _, jb in ipairs(jobs) do batch[jb.id] = true end
for x, jb in ipairs(jobs) do
  for y, d in ipairs(jb.deps) do
    if not batch[d] and redis.call('EXISTS', jk(d)) == 0 then return {'missing', x - 1, y - 1, d} end
  end
end
local answers, fresh, fresh_out = {}, {}, {}
for _, jb in ipairs(jobs) do
  local holder = nil
  if jb.chosen == '1' and redis.call('EXISTS', jk(jb.id)) == 1 then holder = jb.id end
  if not holder and jb.uk ~= '' then
    local held = redis.call('GET', P .. 'u:' .. jb.uk)
    if held then
      local bar = string.find(held, '|', 1, true)
      local until_ms = tonumber(string.sub(held, bar + 1))
      if not until_ms or until_ms > now then holder = string.sub(held, 1, bar - 1) end
    end
  end
  if holder then
    answers[#answers + 1] = {1, holder, redis.call('HGET', jk(holder), 'st') or 'pending'}
  else
    local sq = redis.call('INCR', P .. 'seq')
    redis.call('HSET', jk(jb.id), 'j', jb.j, 'st', 'pending', 'ix', '', 'a', 0, 'w', '', 'lu', '', 'sa', '', 'fa', '',
      'rsn', '', 'cr', '', 'pid', '', 'q', jb.q, 'n', jb.n, 'p', jb.p, 'sq', sq, 'ra', jb.ra, 'to', jb.to, 'uk', jb.uk,
      'uf', jb.uf, 'wd', 0, 'rev', 0, 'loc', 'x', 'inp', '')
    if jb.uk ~= '' then
      if jb.uf ~= '' then
        -- Held until now + unique_for (compared with the caller's time); the key expires a
        -- day after that only to collect it.
        local ms = tonumber(jb.uf) * 1000
        redis.call('SET', P .. 'u:' .. jb.uk, jb.id .. '|' .. string.format('%d', now + ms), 'PX', ms + 86400000)
      else
        redis.call('SET', P .. 'u:' .. jb.uk, jb.id .. '|')
      end
    end
    redis.call('ZADD', P .. 'all', sq, jb.id)
    redis.call('ZADD', P .. 'q:' .. jb.q, sq, jb.id)
    redis.call('SADD', P .. 'queues', jb.q)
    set_status(jb.id, jk(jb.id), 'pending', jb.q, sq)
    jb.sq = sq
    fresh[#fresh + 1] = jb
    answers[#answers + 1] = {0, jb.id, ''}
  end
end
local doomed = {}
for _, jb in ipairs(fresh) do
  local wd, seen = 0, {}
  for _, d in ipairs(jb.deps) do
    if not seen[d] then
      seen[d] = true
      local st = redis.call('HGET', jk(d), 'st')
      if st == 'dead' or st == 'cancelled' then
        doomed[#doomed + 1] = {jb.id, 'dependency ' .. d .. ' ended ' .. st}
      elseif st ~= 'completed' then
        wd = wd + 1
        redis.call('SADD', P .. 'dep:' .. d, jb.id)
      end
    end
  end
  redis.call('HSET', jk(jb.id), 'wd', wd)
end
local cancelled, is_doomed = {}, {}
for _, dm in ipairs(doomed) do is_doomed[dm[1]] = true end
for _, jb in ipairs(fresh) do
  if not is_doomed[jb.id] then place(jb.id, now) end
end
for _, dm in ipairs(doomed) do
  if cancel_now(dm[1], dm[2], now) then cancelled[#cancelled + 1] = dm[1] end
end
for _, a in ipairs(answers) do
  if a[1] == 0 then a[3] = redis.call('HGET', jk(a[2]), 'st') end
end
for _, jb in ipairs(fresh) do fresh_out[#fresh_out + 1] = {jb.id, jb.sq} end
return {answers, ready_out, cancelled, fresh_out}
"#,
    )
});

/// Claims ready jobs. ARGV: now, holder (`w` worker | `i` in-process), worker id, lease
/// ms, max, name mode (`o` only these | `x` all but these and the reserved), the number
/// of names and the names, the number of queues and the queues, the number of reserved
/// prefixes and the prefixes, the number of reserved names and the names. Promotes due
/// delayed jobs first. Returns `{rows, ready, more}`.
pub static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    with_lib(
        r#"
local now, holder, worker, lease, max = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local mode, i = ARGV[6], 7
local function list()
  local n, t = tonumber(ARGV[i]), {}
  for x = 1, n do t[x] = ARGV[i + x] end
  i = i + n + 1
  return t
end
local names, queues, prefixes, reserved = list(), list(), list(), list()
local named, res = {}, {}
for _, n in ipairs(names) do named[n] = true end
for _, n in ipairs(reserved) do res[n] = true end
local function allowed(n)
  if mode == 'o' then return named[n] == true end
  if named[n] or res[n] then return false end
  for _, pre in ipairs(prefixes) do
    if string.sub(n, 1, #pre) == pre then return false end
  end
  return true
end
promote(now, 1000)
local cands, total = {}, 0
for _, q in ipairs(queues) do
  if redis.call('SISMEMBER', P .. 'paused', q) == 0 then
    for _, n in ipairs(redis.call('SMEMBERS', P .. 'rn:' .. q)) do
      if allowed(n) then
        local rk = P .. 'r:' .. q .. ':' .. n
        total = total + redis.call('ZCARD', rk)
        local top = redis.call('ZRANGE', rk, 0, max - 1, 'WITHSCORES')
        for x = 1, #top, 2 do cands[#cands + 1] = {tonumber(top[x + 1]), top[x]} end
      end
    end
  end
end
table.sort(cands, function(a, b) if a[1] ~= b[1] then return a[1] < b[1] end return a[2] < b[2] end)
local rows = {}
for x = 1, math.min(max, #cands) do
  local m = cands[x][2]
  local id = string.sub(m, string.find(m, '|', 1, true) + 1)
  local k = jk(id)
  unplace(id)
  redis.call('HINCRBY', k, 'a', 1)
  local lu, w, inp = 0, worker, ''
  if holder == 'i' then
    lu = now + (tonumber(redis.call('HGET', k, 'to')) or 300) * 1000
    w, inp = 'in-process', '1'
  else
    lu = now + math.max(lease, 0)
  end
  redis.call('HSET', k, 'st', 'running', 'sa', now, 'w', w, 'lu', lu, 'inp', inp, 'cr', '')
  redis.call('HINCRBY', k, 'rev', 1)
  place(id, now)
  rows[#rows + 1] = row(id)
end
local more = 0
if total > #rows then more = 1 end
return {rows, ready_out, more}
"#,
    )
});

/// Extends a lease. ARGV: id, worker (empty: any), lease ms (empty: as long as the
/// current one), now. Returns `{'ok', lease_end, cancel_requested}`, `{'missing'}`,
/// `{'state', status}` or `{'holder'}`.
pub static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    with_lib(
        r#"
local id, worker, now = ARGV[1], ARGV[2], tonumber(ARGV[4])
local k = jk(id)
local h = redis.call('HMGET', k, 'st', 'w', 'lu', 'sa', 'inp', 'cr')
if not h[1] then return {'missing'} end
if h[1] ~= 'running' then return {'state', h[1]} end
if worker ~= '' and h[2] ~= '' and h[2] ~= worker then return {'holder'} end
if h[5] == '1' then return {'ok', h[3], h[6]} end
local lease = tonumber(ARGV[3]) or (tonumber(h[3]) - tonumber(h[4]))
local lu = now + math.max(lease, 0)
redis.call('HSET', k, 'lu', lu, 'sa', now)
redis.call('ZADD', P .. 'a', lu, id)
return {'ok', tostring(lu), h[6]}
"#,
    )
});

/// Writes states decided in Rust. ARGV: now, then per job: id, the `rev` it was decided
/// on, guard (`-`; `expired`: only if the lease still ended; `revive`: a final job comes
/// back, its dependencies no longer count), JSON, status, attempts, worker, lease end,
/// started, finished, reason, run_at. Returns `{codes, ready, cascade_len}` with one code
/// per job: 1 written, 0 changed meanwhile (decide again), -1 gone.
pub static APPLY: LazyLock<Script> = LazyLock::new(|| {
    with_lib(
        r#"
local now, codes = tonumber(ARGV[1]), {}
for i = 2, #ARGV, 12 do
  local id = ARGV[i]
  local k = jk(id)
  local cur = redis.call('HMGET', k, 'rev', 'lu', 'st')
  if not cur[1] then
    codes[#codes + 1] = -1
  elseif cur[1] ~= ARGV[i + 1] or (ARGV[i + 2] == 'expired' and (cur[3] ~= 'running' or (tonumber(cur[2]) or 0) > now)) then
    codes[#codes + 1] = 0
  else
    unplace(id)
    redis.call('HSET', k, 'j', ARGV[i + 3], 'st', ARGV[i + 4], 'a', ARGV[i + 5], 'w', ARGV[i + 6], 'lu', ARGV[i + 7],
      'sa', ARGV[i + 8], 'fa', ARGV[i + 9], 'rsn', ARGV[i + 10], 'ra', ARGV[i + 11], 'cr', '', 'inp', '')
    if ARGV[i + 2] == 'revive' then redis.call('HSET', k, 'wd', 0) end
    redis.call('HINCRBY', k, 'rev', 1)
    place(id, now)
    if FINAL[ARGV[i + 4]] then on_final(id, ARGV[i + 4], now) end
    codes[#codes + 1] = 1
  end
end
return {codes, ready_out, redis.call('LLEN', P .. 'cascade')}
"#,
    )
});

/// Records a cancel request on a running job. ARGV: id, rev. Returns 1, or 0 when the
/// job changed meanwhile.
pub static REQUEST_CANCEL: LazyLock<Script> = LazyLock::new(|| {
    with_lib(
        r#"
local k = jk(ARGV[1])
local h = redis.call('HMGET', k, 'rev', 'st')
if h[1] ~= ARGV[2] or h[2] ~= 'running' then return 0 end
redis.call('HSET', k, 'cr', '1')
redis.call('HINCRBY', k, 'rev', 1)
return 1
"#,
    )
});

/// Notes that a job reports progress. ARGV: id. Returns `{'first', name, queue}`,
/// `{'again'}` or `{'not_live'}`.
pub static NOTE_PROGRESS: LazyLock<Script> = LazyLock::new(|| {
    with_lib(
        r#"
local k = jk(ARGV[1])
local h = redis.call('HMGET', k, 'st', 'pid', 'n', 'q')
if not h[1] or FINAL[h[1]] then return {'not_live'} end
if h[2] and h[2] ~= '' then return {'again'} end
redis.call('HSET', k, 'pid', ARGV[1])
return {'first', h[3], h[4]}
"#,
    )
});

/// The first part of a tick. ARGV: now, limit. Promotes due delayed jobs and returns
/// `{ready, expired_ids, next_delayed, next_lease}` (the two times empty when none).
pub static TICK: LazyLock<Script> = LazyLock::new(|| {
    with_lib(
        r#"
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
promote(now, limit)
local expired = redis.call('ZRANGEBYSCORE', P .. 'a', '-inf', now, 'LIMIT', 0, limit)
local d = redis.call('ZRANGE', P .. 'd', 0, 0, 'WITHSCORES')
local a = redis.call('ZRANGE', P .. 'a', 0, 0, 'WITHSCORES')
return {ready_out, expired, d[2] or '', a[2] or ''}
"#,
    )
});

/// One cascade step: cancels up to ARGV[2] queued dependants (and queues theirs). ARGV:
/// now, step. Returns `{cancelled_ids, ready, left}`.
pub static CASCADE: LazyLock<Script> = LazyLock::new(|| {
    with_lib(
        r#"
local now, step, cancelled = tonumber(ARGV[1]), tonumber(ARGV[2]), {}
for _ = 1, step do
  local e = redis.call('LPOP', P .. 'cascade')
  if not e then break end
  local nl = string.find(e, '\n', 1, true)
  local id = string.sub(e, 1, nl - 1)
  if cancel_now(id, string.sub(e, nl + 1), now) then cancelled[#cancelled + 1] = id end
end
return {cancelled, ready_out, redis.call('LLEN', P .. 'cascade')}
"#,
    )
});

/// A page of the listing. ARGV: index key (`all`, `s:<status>`, `q:<queue>`,
/// `qs:<queue>:<status>`), cursor (a seq, exclusive; empty for the first page), limit,
/// name (empty: any), scan budget. Returns `{rows, next_cursor}` (empty: last page).
pub static LIST: LazyLock<Script> = LazyLock::new(|| {
    with_lib(
        r#"
local top = '+inf'
if ARGV[2] ~= '' then top = '(' .. ARGV[2] end
local limit, name, budget = tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local ids = redis.call('ZREVRANGEBYSCORE', P .. ARGV[1], top, '-inf', 'WITHSCORES', 'LIMIT', 0, budget)
local rows, last, scanned = {}, '', 0
for x = 1, #ids, 2 do
  scanned = scanned + 1
  last = ids[x + 1]
  if name == '' or redis.call('HGET', jk(ids[x]), 'n') == name then
    local r = row(ids[x])
    if #r > 0 then rows[#rows + 1] = r end
  end
  if #rows >= limit then break end
end
if #rows < limit and scanned < budget then last = '' end
return {rows, last}
"#,
    )
});

/// Every queue's counts. ARGV: now. Returns per queue: name, paused, the seven counts
/// (in `JobStatus::ALL` order), completions in the last minute, the oldest ready run_at
/// (empty when none), all as strings.
pub static STATS: LazyLock<Script> = LazyLock::new(|| {
    with_lib(
        r#"
local now = tonumber(ARGV[1])
local STS = {'pending', 'scheduled', 'running', 'completed', 'failed', 'dead', 'cancelled'}
local out = {}
for _, q in ipairs(redis.call('SUNION', P .. 'queues', P .. 'paused')) do
  local r = {q, tostring(redis.call('SISMEMBER', P .. 'paused', q))}
  for _, s in ipairs(STS) do r[#r + 1] = tostring(redis.call('ZCARD', P .. 'qs:' .. q .. ':' .. s)) end
  r[#r + 1] = tostring(redis.call('ZCOUNT', P .. 'fc:' .. q, '(' .. (now - 60000), now))
  local o = redis.call('ZRANGE', P .. 'ra:' .. q, 0, 0, 'WITHSCORES')
  r[#r + 1] = o[2] or ''
  out[#out + 1] = r
end
return out
"#,
    )
});

/// Deletes final jobs. ARGV: completed/cancelled before, dead before (ms, inclusive),
/// limit per status. Returns how many it deleted.
pub static RETENTION: LazyLock<Script> = LazyLock::new(|| {
    with_lib(
        r#"
local gone = 0
for _, sb in ipairs({{'completed', ARGV[1]}, {'cancelled', ARGV[1]}, {'dead', ARGV[2]}}) do
  local st = sb[1]
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'f:' .. st, '-inf', sb[2], 'LIMIT', 0, tonumber(ARGV[3]))) do
    remove_final(id, st)
    gone = gone + 1
  end
end
return gone
"#,
    )
});

/// Deletes final jobs of one queue and status (the bulk purge). ARGV: queue, status
/// (`completed`, `dead` or `cancelled`), limit. Returns how many it deleted.
pub static DELETE_JOBS: LazyLock<Script> = LazyLock::new(|| {
    with_lib(
        r#"
local q, st = ARGV[1], ARGV[2]
if not FINAL[st] then return 0 end
local ids = redis.call('ZRANGE', P .. 'qs:' .. q .. ':' .. st, 0, tonumber(ARGV[3]) - 1)
for _, id in ipairs(ids) do remove_final(id, st) end
return #ids
"#,
    )
});

/// Stores a fired schedule unless it changed meanwhile. ARGV: name, expected
/// `<next_run>|<cron>`, new JSON, new `<next_run>|<cron>`. Returns 1 stored, 0 not.
pub static RECORD_FIRED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local P = KEYS[1]
if redis.call('HGET', P .. 'schedkey', ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', P .. 'sched', ARGV[1], ARGV[3])
redis.call('HSET', P .. 'schedkey', ARGV[1], ARGV[4])
return 1
"#,
    )
});
