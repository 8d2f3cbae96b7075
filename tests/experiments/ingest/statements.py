"""Counting the SQL statements one request runs.

``connection.execute_wrapper`` sees every statement; ``CaptureQueriesContext`` around a
test-client request can see none (Django clears the query log when a request starts), so a
``< N`` check on it could never fail.
"""

from django.db import connection


def statements(client, url, body):
    """POST ``body`` as JSON to ``url``; the response and the first word of each statement."""
    seen = []

    def record(execute, sql, params, many, context):
        seen.append(sql.split()[0].upper())
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        response = client.post(url, body, format="json")
    return response, seen
