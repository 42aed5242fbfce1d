"""The test PostgreSQL server, shared by the store-parametrised suites (webhook inbox, vault, OAuth state).

It comes from ``TETHER_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``); when it cannot be
reached, or psycopg is not installed, the ``postgres`` cases skip and say why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import pytest

POSTGRES_URL = os.environ.get("TETHER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def admin_connection() -> Any:
    """An autocommit connection to the test server, or a skip saying why there is none."""
    psycopg = pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")
    try:
        return psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=2)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is unreachable at {POSTGRES_URL}: {exc}")


@contextmanager
def throwaway_schema() -> Iterator[tuple[str, str]]:
    """``(url, schema)``: a URL whose search_path is a schema made for one test alone, dropped (tables too) after."""
    schema = f"tether_test_{uuid.uuid4().hex[:12]}"
    admin = admin_connection()
    try:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        yield f"{POSTGRES_URL}?options={quote(f'-csearch_path={schema}')}", schema
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()
