"""Domain errors every layer may raise; ``ckptweb.api.exception_handler`` maps them.

Services own the rules, so they raise these and never an HTTP exception; the one exception
handler turns ``InvalidInput`` (``ckptweb.lib.limits``) into a 400 naming the field,
``Conflict`` into a 409 and ``Gone`` into a 410, and pages show the message. Views,
viewsets and tasks do not catch them to re-raise something else.
"""

from __future__ import annotations


class Conflict(Exception):
    """The request is valid but the object's current state forbids it (a 409).

    Raised when an experiment is being deleted, a checkpoint is protected or registered, a
    scan is still running, and so on; ``message`` is the sentence shown to the user.
    """

    default_message = "The object's current state does not allow this."

    def __init__(self, message: str | None = None, code: str = "conflict"):
        self.message = message or self.default_message
        self.code = code
        super().__init__(self.message)


class Gone(Exception):
    """What the request names existed but its content is gone for good (a 410): the files of
    a deleted checkpoint. ``message`` is the sentence shown to the user."""


class ExternalError(Exception):
    """An outside system (a storage, a broker) failed; a run records the message and ends FAILED.

    The message never contains secrets. ``storage.backends.base.StorageError`` is one.
    """


class TransientError(ExternalError):
    """An outside failure worth retrying (connection refused, timeout, throttling, 5xx).

    ``ckptweb.jobs.run_task`` retries a task that raises it, with backoff.
    """
