"""API tokens: named, hashed at rest (django-rest-knox), optionally expiring, with their last
use; the Tokens page lists them beside the ``det user login`` tokens. ``services`` is the one
writer of ``ApiToken``."""
