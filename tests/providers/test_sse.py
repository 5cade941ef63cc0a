from tokenlane.providers.sse import SSEDecoder, SSEEvent


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
