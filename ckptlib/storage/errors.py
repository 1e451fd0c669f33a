"""The one place where an object store's failures become ckptlib errors: one line, the URL, never a secret.

Like httpx's `map_exceptions`: every call into fsspec for a URL runs inside `store_errors(url)`.
- A missing object stays a FileNotFoundError (callers decide what "missing" means: an orphan, an
  incomplete checkpoint), re-raised with the URL alone as its file name.
- A missing bucket is errors.NotFound naming the bucket.
- 403 (wrong or missing credentials, a bucket policy), timeouts, connections refused, throttling that
  outlived the retries, and any other error of the store's client libraries (botocore, aiobotocore,
  aiohttp, s3fs, gcsfs, google-auth) are StoreError.
Messages carry the URL without its query string or user info (a signed URL's X-Amz-Signature and
X-Amz-Credential live there), and every credential value found in the environment is blanked out.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Iterator

from ckptlib import errors


class StoreError(errors.CkptError):
    """The object store refused or failed a request: permissions, timeout, connection, throttling."""


_QUERY = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s'\"?]*)\?[^\s'\"]*", re.IGNORECASE)
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^\s/'\"@]+@", re.IGNORECASE)
_SIGNED = re.compile(r"(X-Amz-(?:Signature|Credential|Security-Token)|AWSAccessKeyId|Signature|"
                     r"x-goog-signature|x-goog-credential)=[^&\s'\"]*", re.IGNORECASE)
_SECRET_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                "GOOGLE_APPLICATION_CREDENTIALS_JSON", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN")
# Client libraries whose exceptions are the store's to explain (matched by module, so none is imported).
_CLIENT_MODULES = ("botocore", "aiobotocore", "aiohttp", "s3fs", "gcsfs", "google", "adlfs", "azure", "fsspec")
_THROTTLED = ("SlowDown", "Throttl", "TooManyRequests", "RequestLimitExceeded", "reduce your request rate")


def redact(text: str) -> str:
    """`text` without URL query strings or user info, signed-URL parameters, or credential values."""
    text = _USERINFO.sub(r"\1", _QUERY.sub(r"\1", str(text)))
    text = _SIGNED.sub(r"\1=…", text)
    for name in _SECRET_VARS:
        value = os.environ.get(name)
        if value and len(value) >= 12:  # real keys are 16+ characters; shorter values are no secret
            text = text.replace(value, "***")
    return text


def public_url(url: str) -> str:
    """The URL as it may be shown: no query string, no user:password@."""
    return redact(url.split("?", 1)[0])


def _bucket(url: str) -> str:
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0]


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(redact(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _from_client_library(exc: BaseException) -> bool:
    return any(type(exc).__module__.split(".")[0] == m for m in _CLIENT_MODULES)


def _detail(exc: BaseException) -> str:
    response = getattr(exc, "response", None)  # botocore ClientError: the store's own code and message
    if isinstance(response, dict) and isinstance(response.get("Error"), dict):
        code, message = response["Error"].get("Code"), response["Error"].get("Message")
        return _one_line(": ".join(str(x) for x in (code, message) if x))
    return _one_line(getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)


def describe(exc: BaseException, url: str) -> errors.CkptError | None:
    """The CkptError for a store failure at `url`, or None when `exc` is not the store's (re-raise it)."""
    where = f"Cannot read '{public_url(url)}'"
    names = _names(exc)
    detail = _detail(exc)
    if isinstance(exc, PermissionError) or "403" in detail.split(":")[0] or "AccessDenied" in detail:
        return StoreError(f"{where}: access denied by the store ({detail}); check the credentials "
                          "(AWS_* variables, ~/.aws) and the bucket's policy.")
    if names & {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError",
                "DefaultCredentialsError"}:
        return StoreError(f"{where}: no credentials for the store (set AWS_ACCESS_KEY_ID and "
                          "AWS_SECRET_ACCESS_KEY, a profile in ~/.aws, or anon access).")
    if any("Timeout" in n for n in names) or isinstance(exc, TimeoutError):
        return StoreError(f"{where}: the store did not answer in time ({type(exc).__name__}).")
    if any(t.lower() in detail.lower() for t in _THROTTLED) or getattr(exc, "errno", None) == errno.EBUSY:
        return StoreError(f"{where}: the store is throttling requests and the retries ran out ({detail}).")
    if names & {"EndpointConnectionError", "ConnectionClosedError", "ClientConnectorError", "ServerDisconnectedError",
                "ConnectionError", "ProxyConnectionError", "SSLError"}:
        return StoreError(f"{where}: cannot reach the store ({detail}).")
    if isinstance(exc, OSError) or _from_client_library(exc):
        return StoreError(f"{where}: the store failed the request ({detail}).")
    return None


@contextlib.contextmanager
def store_errors(url: str) -> Iterator[None]:
    """Run one store request for `url`, mapping its failures (see the module docstring)."""
    try:
        yield
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        message = str(exc)
        if "bucket does not exist" in message or "NoSuchBucket" in message:
            raise errors.NotFound(f"Cannot read '{public_url(url)}': the bucket '{_bucket(url)}' does not "
                                  "exist.") from None
        raise type(exc)(exc.errno or errno.ENOENT, exc.strerror or "No such file or directory",
                        public_url(url)) from None
    except errors.CkptError:
        raise
    except Exception as exc:  # only the store's own failures are mapped; anything else propagates as it was
        mapped = describe(exc, url)
        if mapped is None:
            raise
        raise mapped from None
