"""A real S3 API on 127.0.0.1 for the tests and the benchmark: moto's server behind a counting proxy.

    with S3Store() as store:                    # ThreadedMotoServer on a free port, a proxy in front of it
        store.upload("/tmp/run", "bucket", "runs/a")
        env = store.env()                       # AWS_* for s3fs/botocore, endpoint = the proxy
        store.reset(); ...; store.log           # every request s3fs made: method, key, range, status, bytes

The proxy forwards each request to moto unchanged and records what the client fetched (response body
bytes, as on the wire). It can also answer for moto: `store.faults` is a list of callables
(method, path, query) -> (status, code, message) | None, e.g. a 403 AccessDenied for one bucket, or
503 SlowDown for the first two GETs (the client must retry). Nothing here leaves the loopback address.
"""

from __future__ import annotations

import http.client
import http.server
import logging
import os
import socket
import threading
import urllib.parse
from dataclasses import dataclass

ACCESS_KEY = "AKIDTESTINGCKPTLIB01"
SECRET_KEY = "ckptlib-secret-never-printed-0123456789"
_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "trailer", "upgrade"}


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # /bucket/key
    query: str
    range: str | None
    status: int
    nbytes: int  # response body bytes

    @property
    def kind(self) -> str:
        """LIST, HEAD or GET (an object's bytes)."""
        if self.method == "HEAD":
            return "HEAD"
        params = urllib.parse.parse_qs(self.query, keep_blank_values=True)
        if self.method == "GET" and ("list-type" in params or "prefix" in params or "delimiter" in params
                                     or self.path.count("/") < 2 or self.path.endswith("/")):
            return "LIST"
        return self.method


def _error_body(code: str, message: str, path: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<Resource>{path}</Resource><RequestId>ckptlib-test</RequestId></Error>").encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    store: S3Store

    def log_message(self, *args) -> None:  # quiet
        pass

    def _forward(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        fault = next((f for f in (rule(self.command, parsed.path, parsed.query) for rule in list(self.store.faults))
                      if f), None)
        if fault is not None:
            status, code, message = fault
            payload = b"" if self.command == "HEAD" else _error_body(code, message, parsed.path)
            headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(payload)))]
        else:
            status, headers, payload = self.store.upstream(self.command, self.path, self.headers, body)
        self.store.record(Request(self.command, urllib.parse.unquote(parsed.path), parsed.query,
                                  self.headers.get("Range"), status, len(payload)))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward


class S3Store:
    """moto's S3 server on a free loopback port, a counting proxy in front of it (see the module docstring)."""

    def __init__(self) -> None:
        self.log: list[Request] = []
        self.faults: list = []
        self._lock = threading.Lock()
        self._local = threading.local()

    def __enter__(self) -> S3Store:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        self.moto_port = self._moto.get_host_and_port()[1]
        handler = type("Handler", (_Handler,), {"store": self})
        self._proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._proxy.daemon_threads = True
        self.port = self._proxy.server_address[1]
        self._thread = threading.Thread(target=self._proxy.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._proxy.shutdown()
        self._proxy.server_close()
        self._moto.stop()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment a client needs: test credentials, a region, the proxy as endpoint."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FSSPEC_"))}
        env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_DEFAULT_REGION="us-east-1",
                   AWS_ENDPOINT_URL=self.endpoint, AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull,
                   AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        env.update(extra)
        return env

    def upstream(self, method: str, path: str, headers, body: bytes | None):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection("127.0.0.1", self.moto_port, timeout=30)
        forward = {k: v for k, v in headers.items() if k.lower() not in _HOP}
        try:
            conn.request(method, path, body=body, headers=forward)
            response = conn.getresponse()
        except (http.client.HTTPException, OSError):
            conn.close()
            conn.request(method, path, body=body, headers=forward)
            response = conn.getresponse()
        payload = response.read()
        out = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP and k.lower() != "content-length"]
        out.append(("Content-Length", str(len(payload) if method != "HEAD" else response.getheader("Content-Length")
                                          or 0)))
        return response.status, out, payload

    def record(self, request: Request) -> None:
        with self._lock:
            self.log.append(request)

    def reset(self) -> None:
        with self._lock:
            self.log.clear()

    def client(self):
        """A boto3 client straight to moto (uploads and setup are not counted)."""
        import boto3

        return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.moto_port}", region_name="us-east-1",
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def upload(self, local: str, bucket: str, prefix: str) -> str:
        """Copy the folder `local` (recursively) to s3://bucket/prefix; returns that URL."""
        client = self.client()
        try:
            client.head_bucket(Bucket=bucket)
        except Exception:  # noqa: BLE001 - botocore's ClientError: the bucket is not there yet
            client.create_bucket(Bucket=bucket)
        for folder, _dirs, files in os.walk(local):
            for name in files:
                path = os.path.join(folder, name)
                key = "/".join(p for p in (prefix, os.path.relpath(path, local).replace(os.sep, "/")) if p)
                client.upload_file(path, bucket, key)
        return f"s3://{bucket}/{prefix}".rstrip("/")

    def summary(self) -> dict:
        """{"requests", "bytes", "LIST", "HEAD", "GET"} over the log."""
        with self._lock:
            log = list(self.log)
        out = {"requests": len(log), "bytes": sum(r.nbytes for r in log)}
        for kind in ("LIST", "HEAD", "GET"):
            out[kind] = sum(1 for r in log if r.kind == kind)
        out["object_bytes"] = sum(r.nbytes for r in log if r.kind == "GET")
        return out


class SilentServer:
    """A loopback socket that accepts connections and never answers (a hung endpoint)."""

    def __enter__(self) -> SilentServer:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        return self

    def __exit__(self, *exc) -> None:
        self._sock.close()
