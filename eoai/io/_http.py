"""HTTP with timeouts and bounded retries, shared by the static-catalog reader and pystac-client.

Examples
--------
>>> from eoai.io._http import retry_policy
>>> retry_policy(2).total
2
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

from ..errors import CatalogError, CatalogUnreachableError

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3


def is_url(source: Any) -> bool:
    """True for an ``http(s)://`` string.

    Examples
    --------
    >>> is_url("https://x.org/catalog.json"), is_url("/data/catalog.json")
    (True, False)
    """
    return isinstance(source, str) and urlparse(source).scheme in ("http", "https")


def retry_policy(retries: int, backoff: float = 0.2):
    """A bounded :class:`urllib3.util.retry.Retry` (connect, read and 429/5xx errors).

    Examples
    --------
    >>> retry_policy(0).total
    0
    """
    from urllib3.util.retry import Retry

    retries = int(retries)
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    return Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff,
        backoff_max=10.0,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=None,  # retry POST searches too
        raise_on_status=False,
    )


def session(retries: int = DEFAULT_RETRIES):
    """A :class:`requests.Session` whose http(s) adapters retry ``retries`` times.

    Examples
    --------
    >>> s = session(1)
    >>> s.get_adapter("https://x.org").max_retries.total
    1
    """
    import requests
    from requests.adapters import HTTPAdapter

    s = requests.Session()
    adapter = HTTPAdapter(max_retries=retry_policy(retries))
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


def unreachable(url: str, retries: int, err: BaseException) -> CatalogUnreachableError:
    """The error raised when ``url`` cannot be reached (names the URL and what to do).

    Examples
    --------
    >>> str(unreachable("http://127.0.0.1:9/", 2, OSError("refused")))[:44]
    'could not reach the STAC catalog at http://1'
    """
    return CatalogUnreachableError(
        f"could not reach the STAC catalog at {url} (after {retries} retries): {err}. "
        "Check the URL and your network connection (a proxy or firewall?), raise timeout=/"
        "retries=, or pass the path of a local static catalog instead."
    )


def get_json(url: str, *, timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES):
    """GET a JSON document with timeout and bounded retries.

    Raises
    ------
    eoai.errors.CatalogUnreachableError
        Connection refused, DNS failure, timeout, or HTTP error status after the retries.
    eoai.errors.CatalogError
        The answer is not JSON.

    Examples
    --------
    >>> get_json("http://127.0.0.1:9/catalog.json", timeout=1, retries=0)  # doctest: +SKIP
    """
    import requests

    try:
        with session(retries) as s:
            resp = s.get(url, timeout=timeout)
    except requests.RequestException as err:
        raise unreachable(url, retries, err) from err
    if resp.status_code >= 400:
        raise unreachable(url, retries, RuntimeError(f"HTTP {resp.status_code} {resp.reason}"))
    try:
        return resp.json()
    except (ValueError, json.JSONDecodeError) as err:
        raise CatalogError(
            f"{url} did not answer with JSON ({resp.headers.get('content-type')}); "
            "is it the URL of a STAC catalog, collection, item collection or API root?"
        ) from err


def stac_io(timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES):
    """A pystac ``StacIO`` reading http(s) with timeout and retries (local files as usual).

    Examples
    --------
    >>> io = stac_io(5, 1)
    >>> io.timeout
    5
    """
    from pystac.stac_io import DefaultStacIO

    class _RetryingStacIO(DefaultStacIO):
        def __init__(self) -> None:
            super().__init__()
            self.timeout = timeout
            self.retries = retries

        def read_text_from_href(self, href: str) -> str:
            if not is_url(href):
                return super().read_text_from_href(href)
            import requests

            try:
                with session(self.retries) as s:
                    resp = s.get(href, timeout=self.timeout)
            except requests.RequestException as err:
                raise unreachable(href, self.retries, err) from err
            if resp.status_code >= 400:
                raise unreachable(
                    href, self.retries, RuntimeError(f"HTTP {resp.status_code} {resp.reason}")
                )
            return resp.text

    return _RetryingStacIO()
