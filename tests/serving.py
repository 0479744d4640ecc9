"""Test helpers: run an ASGI app on a free 127.0.0.1 port in a thread, and a prefix-stripping proxy."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running(app: Any, root_path: str = "", port: int | None = None) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yields its base URL (no trailing slash)."""
    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, root_path=root_path, log_level="warning", proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def prefix_proxy(upstream: str, prefix: str) -> Any:
    """An ASGI reverse proxy like the nginx example in docs/embedding.md: ``/prefix/x`` → ``upstream/x``,
    with X-Forwarded-Host/Proto set and streamed responses (Gradio's server-sent events)."""
    import httpx
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response, StreamingResponse

    client = httpx.AsyncClient(base_url=upstream, timeout=None)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        request = Request(scope, receive)
        path = request.url.path
        if not (path == prefix or path.startswith(prefix + "/")):
            response: Response = PlainTextResponse("not behind the proxy prefix", status_code=404)
            await response(scope, receive, send)
            return
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        headers["x-forwarded-host"] = request.headers.get("host", "")
        headers["x-forwarded-proto"] = "http"
        upstream_request = client.build_request(
            request.method,
            path[len(prefix) :] or "/",
            params=request.query_params,
            headers=headers,
            content=await request.body(),
        )
        upstream_response = await client.send(upstream_request, stream=True)
        drop = {"content-length", "transfer-encoding", "connection", "content-encoding"}
        response = StreamingResponse(
            upstream_response.aiter_raw(),
            status_code=upstream_response.status_code,
            headers={k: v for k, v in upstream_response.headers.items() if k.lower() not in drop},
            background=None,
        )
        if upstream_response.headers.get("content-encoding"):
            response.headers["content-encoding"] = upstream_response.headers["content-encoding"]
        await response(scope, receive, send)
        await upstream_response.aclose()

    return app


class TcpProxy:
    """A loopback TCP forwarder to ``upstream`` that can be cut (every connection closed, new ones refused)
    and restored on the same port: a database that goes away mid-run and comes back."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


# ---- replicas behind nginx (tests/test_replicas.py, benchmarks/replicas.py) --------------------------------
NGINX_CONF = """
worker_processes 1;
daemon off;
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream faqbot {{
        {upstreams}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://faqbot;
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
            proxy_read_timeout 120s;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    found = os.environ.get("FAQBOT_TEST_NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(found).exists(), (
        "nginx is not installed: run `bash scripts/services.sh install` (scripts/test.sh does)"
    )
    return found


def wait_ready(base: str, proc: subprocess.Popen[str], seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"replica exited: {proc.stdout.read() if proc.stdout else ''}"
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"{base} did not become ready")


def wait_ui(base: str, seconds: float = 240) -> None:
    """Wait until ``faqbot serve`` has mounted its UI (built in the background after /readyz is 200)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        r = httpx.get(base + "/readyz", timeout=5)
        if r.status_code == 200 and r.json().get("ui"):
            return
        time.sleep(0.25)
    raise AssertionError(f"{base} did not mount its UI")


def start_replica(root: Path, port: int, env: Mapping[str, str]) -> subprocess.Popen[str]:
    """``faqbot serve`` on 127.0.0.1:``port`` over ``root`` (its index as is: --no-rebuild)."""
    full = {**os.environ, "FAQBOT_ROOT": str(root), "FAQBOT_REBUILD": "0", "HF_HUB_OFFLINE": "1", **env}
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--port", str(port), "--no-rebuild"],
        env=full,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@contextmanager
def nginx_in_front(folder: Path, upstream_ports: Sequence[int]) -> Iterator[str]:
    """Debian's nginx in the foreground (a child process with its own config, pid and logs in ``folder``),
    balancing over the given loopback ports; yields its base URL and stops it afterwards."""
    port = free_port()
    servers = "\n        ".join(f"server 127.0.0.1:{p} max_fails=1 fail_timeout=30s;" for p in upstream_ports)
    conf = folder / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(NGINX_CONF.format(tmp=folder, upstreams=servers, port=port, user=user))
    proc = subprocess.Popen(
        [nginx_binary(), "-c", str(conf), "-p", str(folder), "-e", str(folder / "error.log")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, (folder / "error.log").read_text()
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "nginx did not come up"
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)
