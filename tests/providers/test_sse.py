import time

from tokenlane.providers.sse import SSEDecoder, SSEEvent, data_array


def test_events_split_across_pieces() -> None:
    decoder = SSEDecoder()
    stream = b'data: {"a":1}\n\ndata: {"b":2}\n\n: keep-alive\n\ndata: [DONE]\n\n'
    events = []
    for i in range(0, len(stream), 5):
        events += decoder.feed(stream[i:i + 5])
    assert events == [SSEEvent(b'{"a":1}'), SSEEvent(b'{"b":2}'), SSEEvent(b"[DONE]")]
    assert decoder.pending() == b""


def test_crlf_multiline_and_named_events() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"event: error\r\ndata: {\"x\":\r")
    events += decoder.feed(b"\ndata: 1}\r\n\r\n")
    assert events == [SSEEvent(b'{"x":\n1}', "error")]


def test_truncated_event_is_pending() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"a":') == []
    assert decoder.pending() == b'data: {"a":'


def test_one_event_per_piece_decodes_as_the_whole_stream_does() -> None:
    """Upstreams usually write one event per piece (the decoder's fast path); the result must
    be the same however the bytes arrive, edge cases included."""
    events = [b'data: {"a":1}\n\n', b"data: a\rb\n\n", b"data: x\r\n\r\n", b": ping\n\n",
              b"event: error\ndata: {}\n\n", b"data:no-space\n\n", b"data: \n\n",
              b'data: {"b":2}\n\n', b"data: [DONE]\n\n"]
    whole = SSEDecoder().feed(b"".join(events))
    one_by_one = SSEDecoder()
    assert [e for piece in events for e in one_by_one.feed(piece)] == whole
    assert len(whole) == 8 and whole[1] == SSEEvent(b"a") and whole[-1] == SSEEvent(b"[DONE]")


def _feed_in_pieces(decoder: SSEDecoder, data: bytes, size: int) -> list[SSEEvent]:
    events = []
    for i in range(0, len(data), size):
        events += decoder.feed(data[i:i + size])
    return events


def _decode_seconds(payload_bytes: int) -> float:
    """Best of five, in this thread's CPU time (what other processes on a busy machine do to
    the wall clock must not decide the test): one event of `payload_bytes` in 4 KiB pieces."""
    data = b"data: " + b"x" * payload_bytes + b"\n\n"
    best = float("inf")
    for _ in range(5):
        decoder = SSEDecoder(max_event_bytes=10 * payload_bytes)
        start = time.thread_time()
        [event] = _feed_in_pieces(decoder, data, 4096)
        best = min(best, time.thread_time() - start)
        assert len(event.data) == payload_bytes
    return best


def test_decoding_one_large_event_is_linear_in_its_size() -> None:
    """Re-joining the whole buffer on every read made a 5 MB event cost seconds of CPU (the
    event loop blocked meanwhile): 4x the bytes must cost about 4x the time, not 16x."""
    small, large = _decode_seconds(1_000_000), _decode_seconds(4_000_000)
    # Linear is 4x; quadratic was 16x (and seconds of CPU for 4 MB).
    assert large < 8 * small + 0.01, (small, large)
    assert large < 0.5


def test_an_event_over_the_cap_stops_decoding() -> None:
    decoder = SSEDecoder(max_event_bytes=1000)
    assert decoder.feed(b"data: " + b"x" * 900 + b"\n\n")[0].data == b"x" * 900
    assert _feed_in_pieces(decoder, b"data: " + b"y" * 2000, 100) == []  # never ends
    assert decoder.error == "SSE event over 1000 bytes"
    assert decoder.feed(b"\n\ndata: after\n\n") == []  # nothing after it is trusted
    # Events completed before the oversized one still come out, once.
    decoder = SSEDecoder(max_event_bytes=1000)
    assert decoder.feed(b"data: 1\n\ndata: " + b"z" * 2000 + b"\n\ndata: 2\n\n") == [
        SSEEvent(b"1")]
    assert decoder.error is not None


def test_crlf_split_at_every_position_decodes_the_same() -> None:
    stream = b"data: a\r\n\r\nevent: e\r\ndata: b\r\rdata: c\r\n\r\n: x\r\n\r\ndata: [DONE]\r\n\r\n"
    whole = SSEDecoder().feed(stream)
    assert [e.data for e in whole] == [b"a", b"b", b"c", b"[DONE]"]
    for cut in range(len(stream) + 1):
        decoder = SSEDecoder()
        assert decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) == whole, cut
        assert decoder.pending() == b""


def test_data_array_is_what_the_decoder_reads_or_declines() -> None:
    """`data_array` answers only for pieces of whole plain events, and then with exactly the
    decoder's data (as a JSON array's text) and event count; everything else is left to
    it."""
    plain = [b'data: {"a":1}\n\n', b'data: {"a":1}\n\ndata: {"b":2}\n\n',
             b'data: {"a":1}\n\ndata: [DONE]\n\n', b"data: [DONE]\n\n",
             b"data: {}\n\ndata: {}\n\ndata: {}\n\n"]
    for piece in plain:
        got = data_array(piece)
        assert got is not None, piece
        events = SSEDecoder().feed(piece)
        done = events[-1].data == b"[DONE]"
        datas = [e.data for e in (events[:-1] if done else events)]
        assert got == (b"[" + b",".join(datas) + b"]", len(datas), done), piece
    declined = [b"data: a\r\n\r\n", b": ping\n\ndata: {}\n\n", b"data: {}\n\n: ping\n\n",
                b"data: a\ndata: b\n\n", b"event: error\ndata: {}\n\n", b"data:{}\n\n",
                b"data: {}\n\ndata:{}\n\n", b"data: {}\n\n\ndata: {}\n\n", b"data: {}\n",
                b"data: {}", b"id: 1\ndata: {}\n\n"]
    for piece in declined:
        assert data_array(piece) is None, piece
    assert data_array(b"data: " + b"x" * 100 + b"\n\n", max_bytes=50) is None  # over the cap
    # [DONE] before the end: the array it gives is no JSON, so the parser sends the piece to
    # the decoder, which ends the stream there.
    array, events, done = data_array(b"data: [DONE]\n\ndata: {}\n\n")
    assert (array, events, done) == (b"[[DONE],{}]", 2, False)
    # Nor is [DONE] inside an event's data one: the event is garbage for the parser.
    assert data_array(b"data: ,[DONE]\n\n") == (b"[,[DONE]]", 1, False)
    assert data_array(b"data: {}\n\ndata: x,[DONE]\n\n") == (b"[{},x,[DONE]]", 2, False)


def test_decoder_is_idle_only_between_events() -> None:
    decoder = SSEDecoder()
    assert decoder.idle
    decoder.feed(b'data: {"a"')
    assert not decoder.idle
    decoder.feed(b":1}\n\n")
    assert decoder.idle
    decoder.feed(b"data: x\r")  # a CR that may pair with the next piece's LF
    assert not decoder.idle
