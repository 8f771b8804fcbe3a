"""Which Accept-Encoding headers get a gzip answer."""

import pytest

from dashboard.web.compression import accepts_gzip


@pytest.mark.parametrize(("header", "gzip"), [
    ("gzip, deflate, br", True), ("*", True), ("br;q=1, gzip;q=0.5", True),
    ("gzip;q=0", False), ("identity, *;q=0", False), ("br", False), ("", False),
])
def test_gzip_only_where_the_client_accepts_it(header, gzip) -> None:
    assert accepts_gzip(header) is gzip
