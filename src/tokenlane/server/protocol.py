"""HTTP/1.1 protocol errors in OpenAI's error shape.

Malformed HTTP (a bad request line, a header without a colon, a broken chunked body) never
reaches the app: uvicorn's parser answers it with a plain-text 400. uvicorn lets the protocol
class be chosen (`uvicorn.Config(http=...)`), so the gateway's is httptools' own with that one
answer replaced. The connection is closed after it, as before: after a framing error nothing
that follows on it can be trusted.
"""

from __future__ import annotations

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..errors import error_body

__all__ = ["GatewayHttpProtocol"]


class GatewayHttpProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        body = orjson.dumps(error_body(
            f"{msg} The request is not valid HTTP/1.1.", "invalid_request_error", None,
            "invalid_http_request"))
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\n"
                    b"connection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self.transport.close()
