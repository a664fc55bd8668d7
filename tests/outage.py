"""Outages on demand: a TCP proxy in front of a real service that a test can cut and restore.

The app is pointed at the proxy's port instead of the service's. `cut()` stops
listening and drops every live connection, so the app sees exactly what it would
if PostgreSQL or Redis went away (refused connects, broken sockets), while the
shared service itself keeps running for everyone else. `restore()` listens again
on the same port.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

CONNECT_TIMEOUT = 2.0
JOIN_TIMEOUT = 5.0
CHUNK = 64 * 1024


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target`: two threads per connection, at most `max_connections`."""

    def __init__(self, target_host: str, target_port: int, max_connections: int = 200) -> None:
        self.target = (target_host, target_port)
        self.max_connections = max_connections
        self.port = 0  # chosen when first started, kept across restores
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._live: set[socket.socket] = set()  # both ends of every forwarded connection
        self._pumps: set[threading.Thread] = set()
        self.accepted = 0  # connections forwarded, for tests to see the proxy was used

    def start(self) -> None:
        """Listen (again) on the proxy's port, or on a free one the first time."""
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(128)
            self.port = listener.getsockname()[1]
            self._listener = listener
            self._acceptor = threading.Thread(
                target=self._accept_loop, args=(listener,), name=f"proxy-accept-{self.port}", daemon=True
            )
            self._acceptor.start()

    restore = start

    def cut(self) -> None:
        """Refuse new connections and drop the live ones, as a stopped service would."""
        with self._lock:
            listener, self._listener = self._listener, None
            live, self._live = self._live, set()
            acceptor, pumps = self._acceptor, list(self._pumps)
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone may not.
            _quietly(listener.shutdown, socket.SHUT_RDWR)
            listener.close()
        for sock in live:
            _quietly(sock.shutdown, socket.SHUT_RDWR)
            sock.close()
        if acceptor is not None:
            acceptor.join(JOIN_TIMEOUT)
        for pump in pumps:
            pump.join(JOIN_TIMEOUT)

    close = cut  # what a with-block calls on the way out

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut: the listener was shut down
            try:
                upstream = socket.create_connection(self.target, timeout=CONNECT_TIMEOUT)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                # A cut between accept() and here: this connection must not outlive it.
                if self._listener is not listener or len(self._live) >= 2 * self.max_connections:
                    client.close()
                    upstream.close()
                    continue
                self._live.update((client, upstream))
                self.accepted += 1
                for source, sink in ((client, upstream), (upstream, client)):
                    pump = threading.Thread(target=self._pump, args=(source, sink), daemon=True)
                    self._pumps.add(pump)
                    pump.start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            # Either side closing ends the whole connection, both ways.
            for sock in (source, sink):
                _quietly(sock.shutdown, socket.SHUT_RDWR)
            with self._lock:
                self._live.discard(source)
                self._live.discard(sink)
                self._pumps.discard(threading.current_thread())
            source.close()

    def __enter__(self) -> TcpProxy:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _quietly(call: Callable[..., object], *args: object) -> None:
    with contextlib.suppress(OSError):
        call(*args)


def through(proxy: TcpProxy, url: str) -> str:
    """`url` (a database or Redis URL) with its host and port swapped for the proxy's."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{proxy.port}" if userinfo else f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def upstream(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port
