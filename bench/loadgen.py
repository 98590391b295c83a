"""wrk driven by a file of requests, for the load benchmarks (bench/intake_bench.py,
bench/doors_bench.py).

Each line of the file is one request: method, path, headers and body. In a template
`MARK` is replaced by a marker unique to the run, phase, wrk thread and request
(`prefix`, the phase digit, two hex digits of the thread, 19 of its counter), which the
benchmark then finds again in the database; a file of pre-signed requests (`once`) is
used one line per request, never twice. A Lua function of the benchmark's, `outcome`,
says how many tickets an answer stands for (nil: the answer is an error); the script's
`done` prints the answers by status, the tickets they stand for and the latency
percentiles, which `parse_wrk` reads back with wrk's own summary.
"""
from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# The separators of a request line, and CRLF within a body (multipart forms): no request
# holds these characters otherwise.
FIELD, HEADER, CRLF = "\x1f", "\x1e", "\x1d"

WRK_SCRIPT = r"""
-- Written by bench/harness.py: requests from a file, one per line:
-- method \31 path \31 "Name: value" headers joined by \30 \31 body (CRLF written as \29).
local requests = {}
local n = 0
local counter = 0
local phase, prefix, once
statuses = {}
ok = 0
tickets = 0
exhausted = 0

local function split(line, sep)
  local parts, start = {}, 1
  while true do
    local at = string.find(line, sep, start, true)
    if not at then
      table.insert(parts, string.sub(line, start))
      return parts
    end
    table.insert(parts, string.sub(line, start, at - 1))
    start = at + 1
  end
end

local threads = {}
local thread_count = 0
function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
  table.insert(threads, thread)
end

function init(args)
  phase, prefix, once = args[1], args[3], args[5] == "once"
  local nthreads = tonumber(args[4])
  local i = 0
  for line in io.lines(args[2]) do
    if not once or i %% nthreads == tid - 1 then
      local parts = split(line, "\31")
      local headers = {}
      if parts[3] ~= "" then
        for _, header in ipairs(split(parts[3], "\30")) do
          local at = string.find(header, ": ", 1, true)
          headers[string.sub(header, 1, at - 1)] = string.sub(header, at + 2)
        end
      end
      n = n + 1
      local body = string.gsub(parts[4], "\29", "\r\n")
      requests[n] = {method = parts[1], path = parts[2], headers = headers, body = body}
    end
    i = i + 1
  end
end

local function copy(headers)
  local out = {}
  for k, v in pairs(headers) do out[k] = v end
  return out
end

function request()
  counter = counter + 1
  local r
  if once then
    r = requests[counter]
    if r == nil then
      exhausted = exhausted + 1
      return wrk.format("GET", "/healthz", {}, nil)
    end
    return wrk.format(r.method, r.path, copy(r.headers), r.body)
  end
  r = requests[(counter - 1) %% n + 1]
  local mark = prefix .. phase .. string.format("%%02x%%019x", tid, counter)
  return wrk.format(r.method, r.path, copy(r.headers), (string.gsub(r.body, "MARK", mark)))
end

%(outcome)s

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  local filed = outcome(status, headers, body)
  if filed then
    ok = ok + 1
    tickets = tickets + filed
  end
end

function done(summary, latency, requests)
  local total, sums = {}, {ok = 0, tickets = 0, exhausted = 0}
  for _, thread in ipairs(threads) do
    for code, count in pairs(thread:get("statuses")) do
      total[code] = (total[code] or 0) + count
    end
    for name, _ in pairs(sums) do
      sums[name] = sums[name] + thread:get(name)
    end
  end
  for code, count in pairs(total) do
    io.write(string.format("STATUS %%d %%d\n", code, count))
  end
  io.write(string.format("OK %%d\nTICKETS %%d\nEXHAUSTED %%d\n", sums.ok, sums.tickets, sums.exhausted))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("PCT %%g %%.2f\n", p, latency:percentile(p) / 1000.0))
  end
  io.write(string.format("MAX %%.2f\n", latency.max / 1000.0))
end
"""


@dataclass(frozen=True)
class Request:
    """One HTTP request of a wrk run; `MARK` in the body of a template is replaced by the
    request's marker (31 hex digits: prefix, phase, wrk thread, counter)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: str = ""

    def line(self) -> str:
        headers = HEADER.join(f"{k}: {v}" for k, v in self.headers.items())
        joined = FIELD.join([self.method, self.path, headers, self.body.replace("\r\n", CRLF)])
        if "\n" in joined or "\r" in joined or joined.count(FIELD) != 3 or HEADER in self.body or CRLF in self.body:
            raise ValueError(f"request cannot be written on one line: {joined[:200]!r}")
        return joined


def write_requests(path: Path, requests: Sequence[Request]) -> None:
    """One request a line, as the wrk script reads them."""
    path.write_text("".join(r.line() + "\n" for r in requests), encoding="utf-8")


def write_wrk_script(path: Path, outcome: str) -> None:
    """The wrk script with the benchmark's `outcome(status, headers, body)` Lua function."""
    path.write_text(WRK_SCRIPT % {"outcome": outcome.strip()})


# An answer of 201 is one ticket.
CREATED = """
function outcome(status, headers, body)
  if status == 201 then return 1 end
  return nil
end
"""


@dataclass
class WrkResult:
    """What a wrk run measured: answers by status, answers the benchmark counts as done
    and the tickets they stand for, latency percentiles (ms), requests per second."""

    statuses: dict[int, int]
    ok: int
    tickets: int
    exhausted: int
    pct: dict[float, float]
    max: float
    rps: float
    requests: int
    seconds: float
    socket_errors: dict[str, int]

    @property
    def errors(self) -> int:
        """Answers that were not what the benchmark expects, and requests with no answer."""
        return sum(self.statuses.values()) - self.ok + sum(self.socket_errors.values())


def run_wrk(script: Path, requests: Path, url: str, *, connections: int, threads: int, seconds: int,
            phase: int, prefix: str, once: bool = False, timeout: int = 10) -> WrkResult:
    """Run wrk with `script` over the requests file for `seconds`; its parsed result."""
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency",
           "--timeout", f"{timeout}s", "-s", str(script), url, "--",
           str(phase), str(requests), prefix, str(threads), "once" if once else "cycle"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0 or "PCT" not in done.stdout:
        sys.exit(f"wrk failed: {done.stdout}{done.stderr}")
    return parse_wrk(done.stdout)


def parse_wrk(output: str) -> WrkResult:
    """wrk's summary and the lines the script's `done` writes."""
    def one(pattern: str) -> str:
        found = re.search(pattern, output, re.MULTILINE)
        if found is None:
            raise ValueError(f"no {pattern!r} in wrk's output:\n{output}")
        return found.group(1)

    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkResult(
        statuses={int(a): int(b) for a, b in re.findall(r"^STATUS (\d+) (\d+)$", output, re.MULTILINE)},
        ok=int(one(r"^OK (\d+)$")),
        tickets=int(one(r"^TICKETS (\d+)$")),
        exhausted=int(one(r"^EXHAUSTED (\d+)$")),
        pct={float(a): float(b) for a, b in re.findall(r"^PCT ([\d.]+) ([\d.]+)$", output, re.MULTILINE)},
        max=float(one(r"^MAX ([\d.]+)$")),
        rps=float(one(r"Requests/sec:\s+([\d.]+)")),
        requests=int(one(r"(\d+) requests in ")),
        seconds=_seconds(one(r"\d+ requests in ([\d.]+\w+),")),
        socket_errors=dict(zip(("connect", "read", "write", "timeout"), map(int, sockets.groups()), strict=True))
        if sockets else {},
    )


def _seconds(duration: str) -> float:
    """wrk's "20.01s" / "1.00m" as seconds."""
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", duration).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]
