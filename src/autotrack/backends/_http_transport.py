"""The HTTP backend's transport: one request in, one :class:`Response` out.

The default is the standard library's ``http.client``: importing httpx (~250 ms of CPU) and
building an ``httpx.Client`` (~75-100 ms of CA loading) competed with training for the cores,
even on the writer thread. Here connections are kept alive and reused (a small pool, so the
writer and a reader in another thread never share one), a connection gets the connect timeout
for connecting (and the TLS handshake) and the read timeout after, redirects are not followed,
and an SSL context (``ssl.create_default_context()``) is built only for an ``https`` URI, on
its first connection.

Proxies: where the environment names one for the server's URL (``HTTP_PROXY``/``HTTPS_PROXY``/
``ALL_PROXY``, ``NO_PROXY`` honoured), requests go through httpx as before, which speaks to
every kind of proxy; without httpx, :func:`proxy_for` lets the backend fail at the start with
one line. Every failure without an HTTP status (refused, timed out, broken off, TLS) is a
:class:`TransportError`.
"""

from __future__ import annotations

import io
import os
import threading
from typing import IO, Any
from urllib.parse import urlsplit

__all__ = ["Response", "Transport", "TransportError", "proxy_for"]

CHUNK = 1024 * 1024
_MAX_IDLE = 4  # idle keep-alive connections kept per backend


class TransportError(OSError):
    """No HTTP answer: the server could not be reached, timed out or broke the exchange off."""


def proxy_for(url: str) -> tuple[str, str] | None:
    """``(variable, proxy URL)`` when the environment sends ``url`` through a proxy, else None.

    The rules are the standard library's (lower-case variables first, then upper case; ``NO_PROXY``
    with ``*``, host names, domain suffixes and ``host:port``). ``urllib.request`` is imported
    only when some ``*_proxy`` variable is set.
    """
    if not any(k.lower().endswith("_proxy") and k.lower() != "no_proxy" for k in os.environ):
        return None
    import urllib.request

    proxies = urllib.request.getproxies_environment()
    scheme = urlsplit(url).scheme.lower()
    for key in (scheme, "all"):
        if proxies.get(key):
            if urllib.request.proxy_bypass_environment(urlsplit(url).netloc.rpartition("@")[2], proxies):
                return None
            name = f"{key}_proxy"
            variable = name if name in os.environ else name.upper()
            return variable, proxies[key]
    return None


class Response:
    """Status, lower-case headers, and the body: read whole (``read``/``json``/``text``) or streamed."""

    def __init__(self, status_code: int, headers: dict[str, str], body: bytes | None = None,
                 stream: io.RawIOBase | None = None) -> None:
        self.status_code = status_code
        self.headers = headers
        self._body = body
        self._stream = stream

    def read(self) -> bytes:
        if self._body is None:
            stream, self._stream = self._stream, None
            self._body = b""
            if stream is not None:
                try:
                    self._body = stream.read() or b""
                finally:
                    stream.close()
        return self._body

    @property
    def text(self) -> str:
        return self.read().decode("utf-8", "replace")

    def json(self) -> Any:
        from autotrack.backends.file import loads

        return loads(self.read())

    def stream(self) -> IO[bytes]:
        """The body as a binary file object, read as it arrives (closing it ends the response)."""
        stream, self._stream = self._stream, None
        return io.BufferedReader(stream if stream is not None else io.BytesIO(self._body or b""), CHUNK)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


class Transport:
    """Requests to one server (``base_url`` = scheme://host[:port][/prefix])."""

    def __init__(self, base_url: str, headers: dict[str, str], connect_timeout: float, read_timeout: float) -> None:
        parts = urlsplit(base_url)
        self.base_url = base_url.rstrip("/")
        self._https = parts.scheme.lower() == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._headers = dict(headers)
        self._timeouts = (connect_timeout, read_timeout)
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._context: Any = None
        self._connection_class: Any = None
        self._httpx: Any = None  # an httpx.Client when a proxy applies (see proxy_for)
        if proxy_for(base_url) is not None:
            self._httpx = _httpx_client(self._headers, connect_timeout, read_timeout)

    # -- connections --------------------------------------------------------------------
    def _new(self) -> Any:
        if self._connection_class is None:
            self._connection_class = _connection_class(self._https, *self._timeouts)
        connect = self._timeouts[0]
        if self._https:
            if self._context is None:
                self._context = _ssl_context()
            return self._connection_class(self._host, self._port, timeout=connect, context=self._context, blocksize=CHUNK)
        return self._connection_class(self._host, self._port, timeout=connect, blocksize=CHUNK)

    def _checkout(self) -> tuple[Any, bool]:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if conn.sock is not None and not _readable(conn.sock):  # readable while idle: closed by the server
                    return conn, True
                conn.close()
        return self._new(), False

    def _release(self, conn: Any, response: Any) -> None:
        if response.isclosed() and not response.will_close:
            with self._lock:
                if len(self._idle) < _MAX_IDLE:
                    self._idle.append(conn)
                    return
        conn.close()

    # -- requests -----------------------------------------------------------------------
    def request(self, method: str, path: str, *, body: bytes | IO[bytes] | None = None,
                headers: dict[str, str] | None = None, stream: bool = False) -> Response:
        """Send one request; ``body`` may be an open binary file (sent in 1 MiB chunks; give a
        Content-Length header). With ``stream`` the response body is left to ``Response.stream``."""
        if self._httpx is not None:
            return self._request_httpx(method, path, body, headers, stream)
        import http.client

        all_headers = {**self._headers, **(headers or {})}
        if stream:
            all_headers["Accept-Encoding"] = "identity"  # a download is verified byte for byte
        start = body.tell() if body is not None and not isinstance(body, bytes) else 0
        url = self._prefix + path
        for attempt in range(_MAX_IDLE + 2):
            conn, reused = self._checkout()
            try:
                if attempt and body is not None and not isinstance(body, bytes):
                    body.seek(start)
                conn.request(method, url, body=body, headers=all_headers)
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if reused and isinstance(exc, ConnectionError):
                    continue  # a kept-alive connection the server had just closed: once more, on a new one
                raise TransportError(_describe(exc)) from None
            break
        else:  # pragma: no cover - the pool holds at most _MAX_IDLE connections
            raise TransportError("every kept-alive connection was closed by the server")
        headers_out = {k.lower(): v for k, v in response.getheaders()}
        gzipped = headers_out.get("content-encoding", "").lower() == "gzip"
        if stream and not gzipped:
            return Response(response.status, headers_out, stream=_Body(response, lambda: self._release(conn, response)))
        try:
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise TransportError(_describe(exc)) from None
        self._release(conn, response)
        if gzipped:
            import zlib

            try:
                data = zlib.decompress(data, 16 + zlib.MAX_WBITS)
            except zlib.error as exc:
                raise TransportError(f"bad gzip response body: {exc}") from None
        return Response(response.status, headers_out, body=data)

    def _request_httpx(self, method: str, path: str, body: Any, headers: dict[str, str] | None,
                       stream: bool) -> Response:
        import httpx

        client = self._httpx
        content = _chunks(body) if body is not None and not isinstance(body, bytes) else body
        try:
            request = client.build_request(method, self.base_url + path, content=content, headers=headers)
            response = client.send(request, stream=stream)
            if not stream:
                response.read()
        except httpx.TransportError as exc:
            raise TransportError(str(exc) or type(exc).__name__) from None
        headers_out = {k.lower(): v for k, v in response.headers.items()}
        if stream:
            return Response(response.status_code, headers_out, stream=_IterBody(response))
        return Response(response.status_code, headers_out, body=response.content)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        if self._httpx is not None:
            self._httpx.close()


# -- helpers ----------------------------------------------------------------------------------
def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _connection_class(https: bool, connect: float, read: float) -> Any:
    import http.client  # here, not at import: start_run builds the backend on the training thread

    base = http.client.HTTPSConnection if https else http.client.HTTPConnection

    class Connection(base):  # type: ignore[misc, valid-type]
        def connect(self) -> None:
            self.timeout = connect  # the TCP connect and the TLS handshake
            super().connect()
            self.sock.settimeout(read)  # every read and write after

    return Connection


def _readable(sock: Any) -> bool:
    import select

    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _ssl_context() -> Any:
    """The system's CA store (``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured); certifi's bundle
    added where the system has none (a bare container) and certifi is installed."""
    import ssl

    context = ssl.create_default_context()
    if not context.cert_store_stats().get("x509_ca") and not os.environ.get("SSL_CERT_DIR"):
        try:
            import certifi

            context.load_verify_locations(certifi.where())
        except (ImportError, OSError):
            pass
    return context


def _httpx_client(headers: dict[str, str], connect: float, read: float) -> Any:
    import httpx

    timeout = httpx.Timeout(connect=connect, read=read, write=read, pool=5.0)
    # trust_env: the proxies (HTTPS_PROXY, NO_PROXY) and CA bundle (SSL_CERT_FILE) of the environment
    return httpx.Client(headers=headers, timeout=timeout, follow_redirects=False)


def _chunks(fh: IO[bytes]) -> Any:
    while chunk := fh.read(CHUNK):
        yield chunk


class _Body(io.RawIOBase):
    """An ``http.client`` response body as a raw binary file; the connection goes back to the
    pool when the body was read to its end, else it is closed."""

    def __init__(self, response: Any, release: Any) -> None:
        self._response = response
        self._release = release

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        import http.client

        try:
            n = self._response.readinto(buffer)
        except (OSError, http.client.HTTPException) as exc:
            self._response.will_close = True
            raise OSError(f"artifact download broke off: {_describe(exc)}") from None
        if not n and len(buffer) and self._response.length:  # http.client ends a short body quietly
            self._response.will_close = True
            raise OSError(f"artifact download broke off: {self._response.length} bytes missing")
        return n

    def close(self) -> None:
        if not self.closed:
            if not self._response.isclosed():
                self._response.close()
                self._response.will_close = True  # unread body: the connection cannot be reused
            self._release()
        super().close()


class _IterBody(io.RawIOBase):
    """An httpx streamed response as a raw binary file (never the whole body in memory)."""

    def __init__(self, response: Any) -> None:
        self._response = response
        self._chunks = response.iter_bytes(CHUNK)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
            except Exception as exc:  # noqa: BLE001 - a broken download is an OSError to readers
                raise OSError(f"artifact download broke off: {exc}") from None
        n = min(len(buffer), len(self._buffer))
        buffer[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()
