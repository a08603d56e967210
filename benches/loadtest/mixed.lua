-- A mixed /api/v1 load for wrk (benches/loadtest/run.sh passes the token,
-- the subnet, and the range of network-user ids):
--   list pools, get a user, allocate an address and release it again,
--   read a user's accounting, read the online list.
-- Counts every status per thread; done() prints the totals and the
-- latency percentiles, and how many answers were errors: anything but
-- 2xx, except the 409 `subnet_full` of a subnet that is momentarily full.
-- A thread serves several connections, whose answers interleave, so an
-- answer is recognised by its status and body, not by the request order.

local token, subnet_id, first_user, last_user
local step = 0
local pending = {}      -- allocation ids waiting to be released
local counter = 0
statuses = {}  -- a global: done() reads it from each thread
local threads = {}
local kinds = { "pools", "user", "allocate", "release", "accounting", "online" }

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  token, subnet_id = args[1], tonumber(args[2])
  first_user, last_user = tonumber(args[3]), tonumber(args[4])
  statuses = {}
end

local function headers(extra)
  local h = { ["Authorization"] = "Bearer " .. token, ["Accept"] = "application/json" }
  if extra then h["Content-Type"] = "application/json" end
  return h
end

local function some_user()
  return math.random(first_user, last_user)
end

function request()
  step = step % #kinds + 1
  local kind = kinds[step]
  if kind == "release" and #pending == 0 then
    kind = "pools"
  end
  if kind == "pools" then
    return wrk.format("GET", "/api/v1/ipam/pools?per_page=20", headers())
  elseif kind == "user" then
    return wrk.format("GET", "/api/v1/users/" .. some_user(), headers())
  elseif kind == "allocate" then
    counter = counter + 1
    local n = id * 1000000 + counter
    local body = string.format(
      '{"subnet_id":%d,"username":"load-%d","mac_address":"02:%02x:%02x:%02x:%02x:%02x"}',
      subnet_id, n, id % 256, math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256,
      math.floor(n / 256) % 256, n % 256)
    return wrk.format("POST", "/api/v1/ipam/allocate", headers(true), body)
  elseif kind == "release" then
    local allocation = table.remove(pending, 1)
    return wrk.format("POST", "/api/v1/ipam/release", headers(true),
      string.format('{"allocation_id":%d}', allocation))
  elseif kind == "accounting" then
    return wrk.format("GET", "/api/v1/users/" .. some_user() .. "/accounting?per_page=20", headers())
  else
    return wrk.format("GET", "/api/v1/radius/online?per_page=20", headers())
  end
end

function response(status, _, body)
  local key = tostring(status)
  if status == 409 and body:find('"subnet_full"', 1, true) then
    key = "409 subnet_full"
  elseif status == 201 then
    -- Only an allocation answers 201: {"id":N,"subnet_id":...}.
    local allocation = body:match('^{"id":(%d+)')
    if allocation then table.insert(pending, tonumber(allocation)) end
  end
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, _)
  local totals = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for key, count in pairs(counts) do
      totals[key] = (totals[key] or 0) + count
    end
  end
  local keys = {}
  for key in pairs(totals) do table.insert(keys, key) end
  table.sort(keys)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  local expected_conflicts = 0
  io.write("status counts:\n")
  for _, key in ipairs(keys) do
    io.write(string.format("  %-16s %d\n", key, totals[key]))
    local status = tonumber(key:match("^(%d+)"))
    if key == "409 subnet_full" then
      expected_conflicts = expected_conflicts + totals[key]
    elseif status < 200 or status > 299 then
      errors = errors + totals[key]
    end
  end
  local seconds = summary.duration / 1e6
  io.write(string.format("requests %d\n", summary.requests))
  io.write(string.format("requests_per_second %.1f\n", summary.requests / seconds))
  io.write(string.format("latency_p50_ms %.2f\n", latency:percentile(50) / 1000))
  io.write(string.format("latency_p99_ms %.2f\n", latency:percentile(99) / 1000))
  io.write(string.format("latency_max_ms %.2f\n", latency.max / 1000))
  io.write(string.format("expected_409 %d\n", expected_conflicts))
  io.write(string.format("errors %d\n", errors))
end
