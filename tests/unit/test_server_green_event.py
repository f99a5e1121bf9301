"""quantum-ovs-server's waiter for long polls (cmd/server.py _GreenEvent,
the change feed's event_factory there) behaves as threading.Event for its
one waiting green thread: set before wait, set while waiting, the
timeout, and a wake-up and a timeout due at once (the thread resumes
once, not later where it waits for something else), and many set at once
(resumed in the order set, a batch at a time).  In a subprocess
(the module monkey-patches the process with eventlet)."""

import json
import subprocess
import sys

SCRIPT = r"""
import json, time
import eventlet
import eventlet.green.socket
from quantum_ovs.cmd import server
from quantum_ovs.db import changefeed

out = {}
E = server._GreenEvent
e = E()
e.set()
out["set_before"] = [e.is_set(), e.wait(5)]
e.clear()
t = time.monotonic()
out["timeout"] = [e.wait(0.05), round(time.monotonic() - t, 2) >= 0.05]

e = E()
got = []
gt = eventlet.spawn(lambda: got.append(e.wait(5)))
eventlet.sleep(0.01)
t = time.monotonic()
e.set()
e.set()
gt.wait()
out["woken"] = [got, time.monotonic() - t < 1]

# A wake-up and the timeout due in the same turn of the hub: the waiter
# resumes once, and its next wait (a queue here) is not cut short.
e = E()
q = eventlet.queue.LightQueue()
seen = []
def waiter():
    seen.append(e.wait(0.02))
    seen.append(q.get(timeout=0.3))
gt = eventlet.spawn(waiter)
eventlet.sleep(0)
eventlet.patcher.original("time").sleep(0.05)  # blocking: both become due
e.set()
eventlet.sleep(0.1)
q.put("item")
gt.wait()
out["race"] = seen
# Many set at once: resumed in the order set, and a socket made ready by
# the first is read before the last of them (the hub looks at its sockets
# between batches).
order = []
events = [E() for _ in range(80)]
a, b = eventlet.green.socket.socketpair()
def waiting(i):
    events[i].wait(5)
    order.append(i)
    if i == 0:
        b.send(b"x")
threads = [eventlet.spawn(waiting, i) for i in range(len(events))]
def reader():
    a.recv(1)
    order.append("socket")
r = eventlet.spawn(reader)
eventlet.sleep(0)
for e in events:
    e.set()
for t in threads + [r]:
    t.wait()
out["order"] = order
# set_later: resumed after every thread set() (set before or after it); a
# thread set_later and then set() is resumed with those set().
later_order = []
events = [E() for _ in range(12)]
def waiting_later(i):
    events[i].wait(5)
    later_order.append(i)
threads = [eventlet.spawn(waiting_later, i) for i in range(len(events))]
eventlet.sleep(0)
for e in events[:6]:
    e.set_later()
for e in events[6:]:
    e.set()
events[5].set()  # set later, then concerned directly: resumed with those set()
for t in threads:
    t.wait()
out["later_order"] = later_order

# A streamed poll's answer whose write fails after the head: the
# connection ends, and nothing (no 500) is written after what went out.
from quantum_ovs.api import agent_api
import socket as _socket

class Wfile:
    def __init__(self):
        self.data = b""
    def write(self, data):
        if data == b"0\r\n\r\n":
            raise _socket.timeout("the client stopped reading")
        self.data += data
    def flush(self):
        pass

class Srv:
    capitalize_response_headers = True
    keepalive = True

p = server._Protocol.__new__(server._Protocol)
p.wfile, p.server, p.request_version, p.close_connection = Wfile(), Srv(), "HTTP/1.1", 0
p.headers, p.path = {}, "/agent-api/v1/hosts/h/state"
closed = []
stream = agent_api.Stream(b"a\n", (x for x in [b"b\n"]))
stream.on_close(lambda: closed.append(1))
try:
    p._stream(["200 OK", [("Content-Type", "application/x-ndjson")]], stream)
finally:
    stream.close()
    stream.close()
out["cut"] = [p.wfile.data.decode(), p.close_connection, closed]
out["factory"] = changefeed.ChangeFeed.event_factory.__name__
print(json.dumps(out))
"""


def test_green_event_is_an_event_for_one_waiter():
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["set_before"] == [True, True]
    assert out["timeout"] == [False, True]
    assert out["woken"] == [[True], True]
    assert out["race"] in ([True, "item"], [False, "item"])
    n = len(out["order"]) - 1
    assert [i for i in out["order"] if i != "socket"] == list(range(n))
    assert out["order"].index("socket") < n - 16, out["order"]  # (BATCH is 4)
    assert out["factory"] == "Event"  # set by serve(), not on import
    assert out["later_order"] == list(range(6, 12)) + [5] + list(range(5)), out["later_order"]
    data, close, closed = out["cut"]
    assert data.startswith("HTTP/1.1 200 OK\r\n") and data.count("HTTP/1.1") == 1, data
    assert "Transfer-Encoding: chunked\r\n" in data
    assert data.endswith("\r\n\r\n2\r\na\n\r\n2\r\nb\n\r\n"), data
    assert close == 1 and closed == [1]  # the connection ends; closed once
