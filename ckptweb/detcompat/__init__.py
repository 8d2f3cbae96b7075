"""Determined compatibility: the real ``det`` CLI and SDK (0.38.1) against ckptweb.

Mounted at ``/det-compat/`` (``det -m http://HOST:PORT/det-compat``). This package only
*translates* Determined's REST shapes to and from ckptweb's own services; every rule
(permissions, retention, downloads, partial deletion) is the apps' own:

* ``hashers``  — the password hasher that lets Determined's pre-hashed logins verify;
* ``models``   — ``DetToken``, the expiring Bearer tokens ``det user login`` receives;
* ``auth``     — issuing/revoking tokens and the DRF ``Authorization: Bearer`` scheme;
* ``translate``— ckptweb rows as Determined's ``v1Checkpoint``/``v1Experiment``/``v1User``;
* ``base``     — ``DetView`` and the request helpers (bodies, parameters, lookups, errors);
* ``views``    — the routes of docs/architecture.md "Determined compatibility";
* ``registry`` — the model registry routes (``det model``) over ``experiments.registry``;
* ``admin``    — the token list, where staff revoke a token.

Wire contract (read from ``determined`` 0.38.1's source): every CLI command first calls
``GET info`` (needs a PEP 440 ``version``) and checks its token with ``GET api/v1/me``; the
generated bindings accept only status 200, send JSON bodies without a Content-Type, and
read errors from ``message`` (403) or ``error.error``; so every success here is a 200,
bodies are parsed as JSON whatever their Content-Type, and every error body is
``{"message": m, "error": {"error": m}}``. A missing or bad token is a 401.

State mapping (``translate.CHECKPOINT_STATES``): COMPLETED, PARTIALLY_DELETED, DELETED and
ERROR map to the ``STATE_*`` of the same name. DELETING, which Determined's checkpoints
lack, maps to ``STATE_PARTIALLY_DELETED``: a GC run is removing files, some may be gone
already, and the checkpoint is not yet DELETED (a download is refused until it settles).
Experiments map one to one (``STATE_ACTIVE`` … ``STATE_DELETING``).
"""
