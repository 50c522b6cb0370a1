"""The classroom server's training queue and per-session run bound (flowviz.serve)."""

import threading

from flowviz.serve import TrainingSlots, env_int, evict_oldest


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_at_most_limit_train_and_the_rest_queue_in_arrival_order():
    slots = TrainingSlots(2, ttl=10, clock=Clock())
    assert [slots.request(w) for w in "abcde"] == [0, 0, 1, 2, 3]
    assert slots.request("d") == 2  # asking again keeps the place
    slots.release("a")
    assert slots.request("d") == 1  # c took a's slot, d moved up
    assert slots.request("c") == 0 and slots.counts() == (2, 2)


def test_a_vanished_session_loses_its_slot_after_ttl():
    clock = Clock()
    slots = TrainingSlots(1, ttl=10, clock=clock)
    assert slots.request("gone") == 0 and slots.request("next") == 1
    clock.t = 5
    assert slots.request("next") == 1  # the holder is still within its ttl
    clock.t = 12
    assert slots.request("next") == 0  # "gone" stopped asking 12 s ago


def test_concurrent_requests_never_exceed_the_limit():
    slots = TrainingSlots(3)
    held, lock, peak = set(), threading.Lock(), [0]

    def worker(i):
        for _ in range(200):
            if slots.request(f"w{i}") == 0:
                with lock:
                    held.add(i)
                    peak[0] = max(peak[0], len(held))
                with lock:
                    held.discard(i)
                slots.release(f"w{i}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= peak[0] <= 3 and slots.counts() == (0, 0)


def test_evict_oldest_keeps_the_protected_runs():
    runs = {k: object() for k in "abcdef"}
    assert evict_oldest(runs, 3, keep={"a", "e"}) == ["b", "c", "d"]
    assert list(runs) == ["a", "e", "f"]
    assert evict_oldest(runs, 5) == []


def test_env_settings_fall_back_on_bad_values(monkeypatch):
    monkeypatch.setenv("X_N", "0")
    assert env_int("X_N", 2) == 1  # at least one
    monkeypatch.setenv("X_N", "lots")
    assert env_int("X_N", 2) == 2
