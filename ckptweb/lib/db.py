"""Database helpers of the kernel: byte counters that no number of rows can overflow."""

from __future__ import annotations

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
