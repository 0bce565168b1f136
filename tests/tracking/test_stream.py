from hypothesis import given
from hypothesis import strategies as st

from tracking.protocols import BadChecksum, FrameTooLong, ProtocolError, gt06, jt808
from tracking.protocols.stream import Gt06Framer, Jt808Framer, framer_for

LOCATION_490 = bytes.fromhex("78781f120f0a140e150bc505e51e780293a9e800540000f601006e0055da00035f240d0a")
HEARTBEAT_427 = bytes.fromhex("78780a13c40604000201298f5b0d0a")
JT_LOCATION = bytes.fromhex(
    "7e0200001f01207646327900400000000000006002015c7ab706d20469003b0000000025040216362606013e6b7e"
)
JT_HEARTBEAT = bytes.fromhex("7e0002000004304832546500b7ca7e")

gt06_frames = st.builds(
    gt06.build_frame, st.integers(0, 255), st.binary(max_size=300), st.integers(0, 0xFFFF)
)  # random content: it will contain 78 78, 0d 0a and so on
jt808_frames = st.builds(
    lambda msg_id, body, phone, serial, version: jt808.encode(
        msg_id, body, phone=phone, serial=serial, version=version
    ),
    st.integers(0, 0xFFFF),
    st.binary(max_size=300),
    st.binary(min_size=6, max_size=6),
    st.integers(0, 0xFFFF),
    st.none(),
) | st.builds(
    lambda body, phone: jt808.encode(0x0200, body, phone=phone, serial=1, version=1),
    st.binary(max_size=200),
    st.binary(min_size=10, max_size=10),
)
no_flag_garbage = st.lists(st.integers(0, 255).filter(lambda byte: byte != 0x7E), max_size=40).map(bytes)


def feed_in_pieces(framer, stream, cuts):
    out = []
    previous = 0
    for cut in [*sorted(cuts), len(stream)]:
        out += framer.feed(stream[previous:cut])
        previous = cut
    return out


def frames_only(items):
    return [item for item in items if isinstance(item, bytes)]


def test_several_frames_in_one_read_and_a_partial_one():
    framer = Gt06Framer()
    assert framer.feed(LOCATION_490 + HEARTBEAT_427 + LOCATION_490[:10]) == [LOCATION_490, HEARTBEAT_427]
    assert framer.pending == 10
    assert framer.feed(LOCATION_490[10:]) == [LOCATION_490]
    assert (framer.frames, framer.errors, framer.garbage_bytes, framer.pending) == (3, 0, 0, 0)


def test_gt06_garbage_is_skipped_and_counted():
    framer = Gt06Framer()
    assert framer.feed(b"GET / HTTP/1.1\r\n" + HEARTBEAT_427) == [HEARTBEAT_427]
    assert framer.garbage_bytes == 16


def test_gt06_bad_crc_frame_is_reported_and_the_next_one_still_comes_out():
    broken = LOCATION_490[:-3] + b"\x00" + LOCATION_490[-2:]
    items = Gt06Framer().feed(broken + HEARTBEAT_427)
    assert isinstance(items[0], BadChecksum)
    assert items[-1] == HEARTBEAT_427


def test_gt06_wrong_length_frame_is_reported_and_skipped():
    wrong = bytes.fromhex("787808134606020002044dc5050d0a")
    items = Gt06Framer().feed(wrong + HEARTBEAT_427)
    assert isinstance(items[0], ProtocolError)
    assert frames_only(items) == [HEARTBEAT_427]


def test_gt06_false_start_in_garbage_does_not_hold_back_a_real_frame():
    framer = Gt06Framer()
    assert framer.feed(b"\x78\x78\xff" + HEARTBEAT_427) == [HEARTBEAT_427]  # 78 78 ff would be a 260-byte frame


def test_gt06_max_frame_length():
    framer = Gt06Framer(max_frame=512)
    items = framer.feed(b"\x79\x79\xff\xff" + HEARTBEAT_427)
    assert isinstance(items[0], FrameTooLong)
    assert items[-1] == HEARTBEAT_427


def test_jt808_frames_partial_and_garbage():
    framer = Jt808Framer()
    assert framer.feed(b"\x00\x01" + JT_LOCATION + JT_HEARTBEAT[:5]) == [JT_LOCATION]
    assert framer.feed(JT_HEARTBEAT[5:] + b"zz") == [JT_HEARTBEAT]
    assert framer.garbage_bytes == 4


def test_jt808_stream_joining_mid_frame_resynchronises():
    items = Jt808Framer().feed(JT_LOCATION[10:] + JT_HEARTBEAT)
    assert frames_only(items) == [JT_HEARTBEAT]


def test_jt808_bad_frame_then_good_frame():
    broken = JT_LOCATION[:-2] + b"\x00\x7e"
    items = Jt808Framer().feed(broken + JT_HEARTBEAT)
    assert isinstance(items[0], ProtocolError)
    assert items[1:] == [JT_HEARTBEAT]


def test_jt808_stray_flag_in_garbage_does_not_swallow_the_next_frame():
    assert frames_only(Jt808Framer().feed(b"ab\x7ecd" + JT_HEARTBEAT + JT_LOCATION)) == [JT_HEARTBEAT, JT_LOCATION]


def test_jt808_bad_escape_is_reported():
    items = Jt808Framer().feed(b"\x7e\x00\x02\x7d\x05" + bytes(12) + b"\x7e" + JT_HEARTBEAT)
    assert items[0].code == "bad_escape"
    assert items[1:] == [JT_HEARTBEAT]


def test_jt808_max_frame_length():
    framer = Jt808Framer(max_frame=100)
    items = framer.feed(b"\x7e" + bytes(200))
    assert isinstance(items[0], FrameTooLong)
    assert framer.pending == 0
    assert framer.feed(b"\x7e" + JT_HEARTBEAT) == [JT_HEARTBEAT]  # the long frame's closing flag, then a frame


def test_framer_for():
    assert isinstance(framer_for("gt06"), Gt06Framer)
    assert isinstance(framer_for("jt808"), Jt808Framer)


@given(st.data(), st.lists(st.tuples(st.binary(max_size=30), gt06_frames), max_size=8), st.binary(max_size=30))
def test_gt06_random_splits_and_garbage_give_back_exactly_the_frames(data, chunks, tail):
    stream = b"".join(garbage + frame for garbage, frame in chunks) + tail
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    framer = Gt06Framer()
    assert frames_only(feed_in_pieces(framer, stream, cuts)) == [frame for _, frame in chunks]


@given(st.data(), st.lists(gt06_frames, max_size=8))
def test_gt06_clean_stream_has_no_errors_or_garbage(data, frames):
    stream = b"".join(frames)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    framer = Gt06Framer()
    assert feed_in_pieces(framer, stream, cuts) == frames
    assert (framer.errors, framer.garbage_bytes, framer.pending) == (0, 0, 0)


@given(st.data(), st.lists(st.tuples(no_flag_garbage, jt808_frames), max_size=8), no_flag_garbage)
def test_jt808_random_splits_and_garbage_give_back_exactly_the_frames(data, chunks, tail):
    stream = b"".join(garbage + frame for garbage, frame in chunks) + tail
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    framer = Jt808Framer()
    assert feed_in_pieces(framer, stream, cuts) == [frame for _, frame in chunks]
    assert framer.garbage_bytes == sum(len(garbage) for garbage, _ in chunks) + len(tail)


@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=10))
def test_framers_survive_arbitrary_bytes(stream, cuts):
    for framer in (Gt06Framer(), Jt808Framer()):
        for item in feed_in_pieces(framer, stream, [cut for cut in cuts if cut <= len(stream)]):
            assert isinstance(item, bytes | ProtocolError)


def described(items):
    return [item if isinstance(item, bytes) else (type(item).__name__, str(item)) for item in items]


@given(gt06_frames, st.integers(0, 400), st.integers(0, 255), st.integers(10, 60) | st.just(4096))
def test_gt06_a_frame_in_one_read_is_judged_as_one_arriving_byte_by_byte(frame, where, value, max_frame):
    """A whole frame in one read takes the framer's short path; altered anywhere, or longer than
    allowed, it must still be refused or held exactly as when its bytes arrive one at a time."""
    if where < len(frame):
        frame = frame[:where] + bytes((value,)) + frame[where + 1 :]
    at_once, by_byte = Gt06Framer(max_frame), Gt06Framer(max_frame)
    whole = at_once.feed(frame)
    trickled = feed_in_pieces(by_byte, frame, range(1, len(frame)))
    assert described(whole) == described(trickled)
    counters = (at_once.frames, at_once.errors, at_once.garbage_bytes, at_once.pending)
    assert counters == (by_byte.frames, by_byte.errors, by_byte.garbage_bytes, by_byte.pending)


def test_gt06_one_read_of_a_real_location_frame_is_passed_on_as_it_came():
    framer = Gt06Framer()
    assert framer.feed(LOCATION_490) == [LOCATION_490]
    assert framer.feed(LOCATION_490[:20]) == []
    assert framer.feed(LOCATION_490[20:] + HEARTBEAT_427) == [LOCATION_490, HEARTBEAT_427]
    assert (framer.frames, framer.errors, framer.garbage_bytes, framer.pending) == (3, 0, 0, 0)
