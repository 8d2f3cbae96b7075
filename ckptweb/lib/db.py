"""Database helpers of the kernel: byte counters no number of rows can overflow, and IN
lists no number of ids can push past the database's limit of bound parameters."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator

from django.db import connection
from django.db.models import BigIntegerField, Sum

from ckptweb.lib.limits import MAX_INT


def add_bytes(total: int, size: int) -> int:
    """``total + size`` held within a 64-bit column: a running byte counter saturates.

    Counters such as a run's ``reclaimed_bytes`` are stored in bigint columns; 2**63 bytes
    (8 EiB) is beyond any real storage, so saturating there only guards the column.
    """
    return min(total + size, MAX_INT)


class ByteSum(Sum):
    """``Sum`` of byte counts that no number of rows can overflow.

    PostgreSQL sums bigint as numeric (exact, unbounded). SQLite's ``SUM`` raises "integer
    overflow" past 2**63, so there it is ``TOTAL`` (a double: exact to 2**53 bytes, 8 PiB,
    rounded beyond). Callers that need an ``int`` pass the value through ``int()``.
    """

    def __init__(self, expression, **extra):
        extra.setdefault("output_field", BigIntegerField())
        super().__init__(expression, **extra)

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(compiler, connection, function="TOTAL", **extra_context)


#: Parameters a chunked statement keeps for its other conditions.
OTHER_PARAMETERS = 50


def parameter_limit() -> int | None:
    """Parameters one statement may bind on this connection (None: no practical limit).

    SQLite's is the connection's own: 32,766 by default, 999 in old builds, or lowered per
    connection (Django's ``max_query_params`` is a fixed 999). PostgreSQL through psycopg's
    client-side binding has none.
    """
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return connection.features.max_query_params


def in_chunk_size() -> int | None:
    """Values one ``IN`` list may hold on this connection (None: any number)."""
    limit = parameter_limit()
    return None if limit is None else max(1, limit - OTHER_PARAMETERS)


def chunked(values: Iterable, size: int | None = None) -> Iterator[list]:
    """``values`` in lists small enough for one ``IN`` each (one list where any size goes).

    A GC run's deletion set can hold a million ids; one parameter per id fails on SQLite.
    """
    if size is None:
        size = in_chunk_size()
    values = list(values)
    if size is None:
        if values:
            yield values
        return
    for start in range(0, len(values), size):
        yield values[start : start + size]
