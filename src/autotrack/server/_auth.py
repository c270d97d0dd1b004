"""Who may do what on a tracking server: access tokens, each with a scope, and the audit log.

Scopes, each allowing what the one before does: ``read`` (the dashboard and the reading API),
``write`` (create runs, and append to the runs it created), ``admin`` (anything, deleting runs
included). A token is ``atk_<id>_<secret>``: the id finds its record, the secret is checked
against the record's scrypt hash (the standard library's ``hashlib.scrypt``), so the store never
holds a usable token, and a leaked store does not leak access. A token is shown once, when made.

Records live in the served store (``_server/tokens/<id>.json``, see ``backends/_admin``), so every
worker process of a server, and ``autotrack token`` run on the store, see the same ones; a
revocation reaches running servers within ``_REFRESH`` seconds. A verified token is remembered
(by its sha256) so the slow hash is paid once per token and process, not per request.

The server's single token of before (``AUTOTRACK_TOKEN``/``--token-file``) is an ``admin`` token
named ``admin``. A server with neither that nor any token record is open (one person, loopback):
every caller is ``anonymous`` with admin rights, and the server checks the ``Host`` header.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import os
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from autotrack.backends import _admin

__all__ = ["SCOPES", "Principal", "Tokens", "audit", "ANONYMOUS"]

SCOPES = ("read", "write", "admin")
_TOKEN = re.compile(r"atk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
_REFRESH = 5.0  # seconds a process trusts its copy of the token records


@dataclass(frozen=True)
class Principal:
    """The caller of a request: a token's id and name, and its scope."""

    id: str
    name: str
    scope: str

    def allows(self, scope: str) -> bool:
        return SCOPES.index(self.scope) >= SCOPES.index(scope)

    def owner(self) -> dict[str, str]:
        """How a run records who created it."""
        return {"id": self.id, "name": self.name}


ANONYMOUS = Principal("anonymous", "anonymous", "admin")
_LEGACY = Principal("admin", "admin", "admin")


def _hash(secret: str, salt: bytes) -> str:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, **_SCRYPT).hex()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


class Tokens:
    """The token records of one store, and the check of a request's bearer token."""

    def __init__(self, store: Any, legacy: str | None = None) -> None:
        self.store = store
        self.legacy = legacy.encode("utf-8") if legacy else None
        self._lock = threading.Lock()
        self._records: dict[str, dict[str, Any]] = {}
        self._loaded = -_REFRESH
        self._verified: dict[str, str] = {}  # sha256 of a bearer token -> its record id

    # -- managing (``autotrack token``) --------------------------------------------------------
    def create(self, name: str, scope: str) -> tuple[str, dict[str, Any]]:
        """A new token: ``(the token, shown only now; its record without the hash)``."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
        if not _NAME.fullmatch(name or ""):
            raise ValueError(f"invalid token name {name!r}: 1-64 of A-Z a-z 0-9 . _ @ -, starting with a letter or digit")
        if any(r["name"] == name and not r.get("revoked") for r in self.records(fresh=True)):
            raise ValueError(f"a token named {name!r} exists already (revoke it first)")
        token_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), os.urandom(16)
        record = {"id": token_id, "name": name, "scope": scope, "created": _now(), "revoked": None,
                  "salt": salt.hex(), "hash": _hash(secret, salt)}
        _admin.put_doc(self.store, "tokens", f"{token_id}.json", doc=record)
        audit(self.store, None, "token_create", token=name, scope=scope)
        return f"atk_{token_id}_{secret}", _public(record)

    def revoke(self, name_or_id: str) -> dict[str, Any]:
        found = [r for r in self.records(fresh=True) if name_or_id in (r["id"], r["name"]) and not r.get("revoked")]
        if not found:
            raise LookupError(f"no active token named {name_or_id!r}")
        record = dict(found[0], revoked=_now())
        _admin.put_doc(self.store, "tokens", f"{record['id']}.json", doc=record)
        audit(self.store, None, "token_revoke", token=record["name"])
        return _public(record)

    def records(self, fresh: bool = False) -> list[dict[str, Any]]:
        """Every token record (hashes included; see ``listing`` for what to show)."""
        with self._lock:
            if fresh or time.monotonic() - self._loaded > _REFRESH:
                found: dict[str, dict[str, Any]] = {}
                for name in _admin.list_docs(self.store, "tokens"):
                    try:
                        record = _admin.get_doc(self.store, "tokens", name)
                    except ValueError:
                        continue  # a damaged record opens nothing
                    if isinstance(record, dict) and isinstance(record.get("id"), str):
                        found[record["id"]] = record
                self._records, self._loaded = found, time.monotonic()
            return list(self._records.values())

    def listing(self) -> list[dict[str, Any]]:
        return [_public(r) for r in sorted(self.records(fresh=True), key=lambda r: r.get("created") or "")]

    # -- checking a request --------------------------------------------------------------------
    @property
    def required(self) -> bool:
        """Whether requests need a token: the server has one, or the store has token records."""
        return self.legacy is not None or bool(self.records())

    def check(self, bearer: str) -> Principal | None:
        """The principal of a bearer token, or None when it opens nothing."""
        given = bearer.strip().encode("utf-8")
        if self.legacy is not None and hmac.compare_digest(given, self.legacy):
            return _LEGACY
        match = _TOKEN.fullmatch(bearer.strip())
        if match is None:
            return None
        record = next((r for r in self.records() if r["id"] == match.group(1)), None)
        if record is None or record.get("revoked") or record.get("scope") not in SCOPES:
            return None
        key = hashlib.sha256(given).hexdigest()
        if self._verified.get(key) != record["id"]:
            try:
                good = hmac.compare_digest(_hash(match.group(2), bytes.fromhex(record["salt"])), record["hash"])
            except (KeyError, TypeError, ValueError):
                good = False
            if not good:
                return None
            self._verified[key] = record["id"]
        return Principal(record["id"], record["name"], record["scope"])


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record.get(k) for k in ("id", "name", "scope", "created", "revoked")}


def audit(store: Any, who: Principal | None, action: str, **fields: Any) -> None:
    """Append one event to the store's audit log: a new file each, never a rewrite."""
    now = _dt.datetime.now(_dt.timezone.utc)
    event = {"time": now.isoformat(), "action": action, **fields,
             "by": who.owner() if who is not None else {"id": "local", "name": "autotrack token (on the store)"}}
    name = f"{now.strftime('%H%M%S.%f')}-{uuid.uuid4().hex[:8]}.json"
    _admin.put_doc(store, "audit", now.strftime("%Y-%m-%d"), name, doc=event)
