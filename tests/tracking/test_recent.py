"""The memory the gateway's writers and the HTTP workers keep of terminals and last positions: an
entry is trusted for its TTL only, and a process that met a county's terminals does not keep them."""

from tracking.recent import Recent


def test_an_entry_counts_until_its_ttl_and_a_later_put_renews_it():
    memory: Recent[int, str] = Recent(60.0)
    memory.put({1: "a", 2: "b"}, now=1000.0)
    assert memory.getter(1059.0)(1) == "a"
    assert memory.getter(1060.0)(1) is None  # past its TTL: the same as no entry
    memory.put({1: "c"}, now=1030.0)
    assert memory.getter(1080.0)(1) == "c" and memory.getter(1080.0)(2) is None


def test_stale_entries_are_swept_by_a_later_put_and_forget_drops_one_at_once():
    memory: Recent[int, str] = Recent(60.0)
    memory.put(dict.fromkeys(range(1000), "x"), now=0.0)
    memory.put({5000: "y"}, now=100.0)  # past the sweep time: the thousand old entries go
    assert memory.keys() == {5000}
    memory.forget([5000, 6000])
    assert memory.getter(100.0)(5000) is None and memory.keys() == set()
