"""Cut a TCP byte stream into frames, one framer per connection.

`feed(data)` returns, in stream order, every complete frame (bytes, exactly as on the wire) and a
ProtocolError for every candidate that failed its checks. Partial frames wait for the next read; bytes
outside any frame are skipped up to the next start marker and counted in `garbage_bytes`. A framer
validates each candidate (GT06: stop bytes and CRC; JT/T 808: escaping, check code, body length) so a
start marker that turns up inside garbage cannot swallow the real frame behind it: a failed candidate
gives up only its first byte (GT06) or its opening flag (JT/T 808) and the search resumes.
"""

from __future__ import annotations

from .common import BadChecksum, BadFraming, BadLength, FrameTooLong, ProtocolError
from .gt06 import STOP, crc_itu, frame_length
from .jt808 import parse_header, unwrap

Item = bytes | ProtocolError


class _Framer:
    def __init__(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self.garbage_bytes = 0
        self.frames = 0
        self.errors = 0
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Item]:
        self._buffer += data
        out: list[Item] = []
        consumed = self._scan(self._buffer, out)
        del self._buffer[:consumed]
        for item in out:
            if isinstance(item, ProtocolError):
                self.errors += 1
            else:
                self.frames += 1
        return out

    def _scan(self, buffer: bytearray, out: list[Item]) -> int:
        raise NotImplementedError


class Gt06Framer(_Framer):
    """GT06 frames start with 78 78 or 79 79 and are cut by their length field (0d 0a can occur inside)."""

    def __init__(self, max_frame: int = 4096) -> None:
        super().__init__(max_frame)

    def feed(self, data: bytes) -> list[Item]:
        # The usual read of a live terminal: one whole valid frame, nothing held from the last read.
        # Handed on as it is, without the copy through the buffer.
        if (
            not self._buffer
            and data.__class__ is bytes
            and len(data) > 3
            and data[0] == data[1] in (0x78, 0x79)
            and self._check(data, 0) == len(data)
        ):
            self.frames += 1
            return [data]
        return super().feed(data)

    def _scan(self, buffer: bytearray, out: list[Item]) -> int:
        position = 0
        while True:
            start = self._next_marker(buffer, position)
            if start < 0:
                # Keep a last 0x78/0x79: it may be the first half of a start marker.
                keep = 1 if len(buffer) > position and buffer[-1] in (0x78, 0x79) else 0
                self.garbage_bytes += len(buffer) - position - keep
                return len(buffer) - keep
            self.garbage_bytes += start - position
            position = start
            verdict = self._check(buffer, start)
            if isinstance(verdict, int):
                out.append(bytes(buffer[start : start + verdict]))
                position = start + verdict
            elif verdict is not None:
                out.append(verdict)
                position = start + 1
            else:
                # Incomplete. If a complete, valid frame starts further on, this "start" was garbage.
                later = self._next_valid(buffer, start + 1)
                if later < 0:
                    return position
                self.garbage_bytes += later - start
                position = later

    @staticmethod
    def _next_marker(buffer: bytearray, position: int) -> int:
        short = buffer.find(b"\x78\x78", position)
        long = buffer.find(b"\x79\x79", position)
        if short < 0:
            return long
        if long < 0:
            return short
        return min(short, long)

    def _check(self, buffer: bytes | bytearray, start: int) -> int | ProtocolError | None:
        """Size of a valid frame at `start`, the reason it is not one, or None if more bytes are needed."""
        total = frame_length(buffer, start)
        if total is None:
            return None
        header = 3 if buffer[start] == 0x78 else 4
        if total - header - 2 < 5:
            return BadLength(f"length field {total - header - 2} is below 5")
        if total > self.max_frame:
            return FrameTooLong(f"length field announces {total} bytes, more than the {self.max_frame} allowed")
        end = start + total
        if len(buffer) < end:
            return None
        if buffer[end - 2 : end] != STOP:
            return BadFraming(f"no 0d0a where the length field says the {total}-byte frame ends")
        received = (buffer[end - 4] << 8) | buffer[end - 3]
        expected = crc_itu(bytes(buffer[start + 2 : end - 4]))
        if received != expected:
            return BadChecksum(f"CRC {received:04x} in the frame, {expected:04x} computed")
        return total

    def _next_valid(self, buffer: bytearray, position: int) -> int:
        while True:
            start = self._next_marker(buffer, position)
            if start < 0:
                return -1
            if isinstance(self._check(buffer, start), int):
                return start
            position = start + 1


class Jt808Framer(_Framer):
    """JT/T 808 frames sit between 0x7e flags; each frame has its own opening and closing flag."""

    def __init__(self, max_frame: int = 2100) -> None:  # 1023-byte body, 2019 header, all escaped
        super().__init__(max_frame)

    def _scan(self, buffer: bytearray, out: list[Item]) -> int:
        position = 0
        while True:
            start = buffer.find(0x7E, position)
            if start < 0:
                self.garbage_bytes += len(buffer) - position
                return len(buffer)
            self.garbage_bytes += start - position
            position = start
            end = buffer.find(0x7E, start + 1)
            if end < 0:
                if len(buffer) - start > self.max_frame:
                    out.append(FrameTooLong(f"no closing 0x7e within {self.max_frame} bytes"))
                    return len(buffer)
                return start
            if end == start + 1:  # 7e 7e: a closing flag, then the next frame's opening flag
                position = end
                continue
            frame = bytes(buffer[start : end + 1])
            problem = self._problem(frame)
            if problem is None:
                out.append(frame)
                position = end + 1
            else:
                out.append(problem)
                position = end  # the closing flag may well be the opening flag of the next frame

    def _problem(self, frame: bytes) -> ProtocolError | None:
        if len(frame) > self.max_frame:
            return FrameTooLong(f"{len(frame)}-byte frame, more than the {self.max_frame} allowed")
        try:
            parse_header(unwrap(frame))
        except ProtocolError as error:
            return error
        return None


def framer_for(protocol: str) -> _Framer:
    if protocol == "gt06":
        return Gt06Framer()
    if protocol == "jt808":
        return Jt808Framer()
    raise ValueError(f"no stream framer for {protocol!r}")
