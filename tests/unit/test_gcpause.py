"""quantum_ovs.gcpause: the collector off while any build is under way."""

import gc
import threading

import pytest

from quantum_ovs import gcpause


@pytest.fixture(autouse=True)
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_paused_for_the_block_and_running_after():
    with gcpause.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_builds_resume_it_when_the_last_ends():
    first, second = gcpause.paused(), gcpause.paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the second build still runs
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_an_error_in_the_block_resumes_it():
    with pytest.raises(KeyError):
        with gcpause.paused():
            raise KeyError("x")
    assert gc.isenabled()


def test_a_collector_turned_off_stays_off():
    gc.disable()
    with gcpause.paused():
        pass
    assert not gc.isenabled()


def test_threads():
    inside, go = threading.Barrier(4), threading.Event()

    def build():
        with gcpause.paused():
            inside.wait(5)
            go.wait(5)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for t in threads:
        t.start()
    inside.wait(5)
    assert not gc.isenabled()
    go.set()
    for t in threads:
        t.join(5)
    assert gc.isenabled()


def test_a_full_view_is_built_with_the_collector_paused(monkeypatch):
    from quantum_ovs.db import changefeed, host_view

    seen = []

    def full_dict(s, host, revision):
        seen.append(gc.isenabled())
        return {"host": host}

    class Reader:
        def __enter__(self):
            return None

        def __exit__(self, *a):
            return False

    class Db:
        def reader(self):
            return Reader()

    class Feed:
        watermark = 5

    monkeypatch.setattr(host_view, "full_dict", full_dict)
    states = changefeed.HostStates(Db())
    states._feed = Feed()
    got = states._full("h1")
    assert got.view == {"host": "h1"} and got.revision == 5 and got.full
    assert seen == [False] and gc.isenabled()


def test_builds_that_keep_overlapping_do_not_keep_it_off(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(gcpause.time, "monotonic", lambda: now[0])
    first = gcpause.paused()
    first.__enter__()
    now[0] += gcpause.MAX_PAUSE / 2
    second = gcpause.paused()
    second.__enter__()
    assert not gc.isenabled()  # not paused for long yet
    first.__exit__(None, None, None)
    now[0] += gcpause.MAX_PAUSE
    third = gcpause.paused()
    third.__enter__()
    assert gc.isenabled()  # paused MAX_PAUSE ago: on again
    second.__exit__(None, None, None)
    third.__exit__(None, None, None)
    assert gc.isenabled()
    with gcpause.paused():  # a new pause after they all ended
        assert not gc.isenabled()
