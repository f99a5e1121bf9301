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
