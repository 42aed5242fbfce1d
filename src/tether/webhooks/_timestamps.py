"""Signed timestamps: strict parsing and the replay window."""

from __future__ import annotations

import re

from tether.errors import MalformedSignatureHeader, TimestampOutsideTolerance

__all__ = ["DEFAULT_TOLERANCE", "check_tolerance", "parse_timestamp"]

DEFAULT_TOLERANCE = 300.0
"""Seconds a signed timestamp may differ from now, either way: the providers' own SDKs use five minutes."""

_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")  # ASCII digits only: str.isdigit() would accept "١٢٣"


def parse_timestamp(text: str, *, scheme: str, header: str) -> int:
    """Unix seconds from a header's decimal text; raises :class:`MalformedSignatureHeader` otherwise."""
    if not _UNIX_SECONDS.fullmatch(text):
        raise MalformedSignatureHeader(
            f"The {scheme} webhook's {header} timestamp is not a Unix time in whole seconds",
            scheme=scheme,
            header=header,
        )
    return int(text)


def check_tolerance(timestamp: int, *, now: float, tolerance: float, scheme: str, header: str) -> None:
    """Raise :class:`TimestampOutsideTolerance` when ``|now - timestamp| > tolerance`` (the edge is accepted)."""
    skew = now - timestamp
    if abs(skew) <= tolerance:
        return
    when = f"{skew:.0f} s old" if skew > 0 else f"{-skew:.0f} s in the future"
    raise TimestampOutsideTolerance(
        f"The {scheme} webhook's signature is valid but its timestamp ({header}) is {when}; "
        f"the tolerance is {tolerance:g} s",
        scheme=scheme,
        header=header,
        timestamp=timestamp,
        now=now,
        tolerance=tolerance,
    )
