"""API keys, the read-only key and JWT RBAC, as Qdrant checks them (REST and gRPC alike).

A request carries its key in the `api-key` header (gRPC: metadata) or as
`Authorization: Bearer <key>`. `Authenticator.authenticate` turns it into an `Access`:

- the API key (or `alt_api_key`): full access; the read-only key: global read access;
- with `service.jwt_rbac`, a JWT signed (HS256) with the API key: the access of its claims,
  `access` (`"r"`, `"m"`, or a list of `{collection, access: r|rw}`; absent: manage), `exp`
  (30 s leeway) and `value_exists` (valid only while a point with those payload values
  exists in that collection, looked up on every request).

Failures carry Qdrant's status and words: 401 "Must provide an API key or an Authorization
bearer token" (no key), 401 "Invalid API key or JWT" (a wrong key), 403 "ExpiredSignature" /
"InvalidSignature" (a JWT that is expired or signed with another key), 401/403 "Invalid
JWT, stateful validation failed" (`value_exists`); REST sends these as plain text.
`Access.check` then answers 403 "Forbidden: ..." (in the JSON envelope) when the operation
needs more than the access has. Keys are compared in constant time (hashed first, so their
length does not show either).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
import warnings
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import jwt

from tessera.api.access import READS, Level
from tessera.errors import Forbidden
from tessera.query.filter_parse import parse_filter
from tessera.storage.toc import TableOfContents

API_KEY_HEADER = "api-key"
JWT_LEEWAY_S = 30

NO_KEY = "Must provide an API key or an Authorization bearer token"
BAD_KEY = "Invalid API key or JWT"
STATEFUL_FAILED = "Invalid JWT, stateful validation failed"
# The path Qdrant's claim validation (the validator crate's Display) gives an item of a
# collection list: the claims' `access`, then the item nested again under `access`, with no
# index.
ACCESS_ITEM = "access.access"

# Qdrant itself warns at start-up when a JWT secret is short; not again on every request.
warnings.filterwarnings("ignore", category=jwt.warnings.InsecureKeyLengthWarning)


class AuthError(Exception):
    """401/403. `plain`: REST answers with the message as a text body (a key that does not
    authenticate); otherwise in Qdrant's JSON error envelope (an access that does not
    suffice)."""

    def __init__(self, status: int, message: str, plain: bool) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.plain = plain


def unauthorized(message: str) -> AuthError:
    return AuthError(401, message, plain=True)


def forbidden(message: str) -> AuthError:
    return AuthError(403, message, plain=True)


def denied(message: str) -> AuthError:
    return AuthError(403, f"Forbidden: {message}", plain=False)


# A collection-scoped token's modes: read, read-write, and points read-write (points and
# their vectors and payloads only: no payload indexes, snapshots or cluster info).
COLLECTION_MODES = ("r", "rw", "prw")


@dataclass(frozen=True)
class Access:
    """Global `mode` ("m" manage, "r" read), or per-collection modes (name -> "r", "rw" or
    "prw")."""

    mode: str | None
    collections: dict[str, str] | None = None

    def check(self, level: Level, collection: str | None) -> None:
        """Raise AuthError (403) unless this access allows an operation of `level` on
        `collection` (None: not about one collection). In Qdrant's order: extras, then
        write."""
        if level is Level.OPEN:
            return
        if self.collections is None:
            if level not in READS and self.mode != "m":
                raise denied("Global manage access is required")
            return
        if level in (Level.MANAGE, Level.GLOBAL_READ):
            raise denied("Global access is required")
        if collection is None:
            return  # listing: filtered to the readable collections
        mode = self.collections.get(collection)
        if mode is None:
            raise denied(f"Access to collection {collection} is required")
        if level in (Level.READ_EXTRAS, Level.WRITE_EXTRAS) and mode == "prw":
            raise denied(f"Only points access is allowed for collection {collection}")
        if level in (Level.WRITE, Level.WRITE_EXTRAS) and mode == "r":
            raise denied(f"Write access to collection {collection} is required")

    def can_read(self, collection: str) -> bool:
        return self.collections is None or collection in self.collections


FULL = Access("m")
READ_ONLY = Access("r")

# The access of the request being served (REST's `Auth` layer and the gRPC guard set it;
# None: no keys configured, everything allowed). What a request names beyond the collection
# it is addressed to (`lookup_from`, `with_lookup`) is checked against it.
REQUEST_ACCESS: ContextVar[Access | None] = ContextVar("tessera_request_access", default=None)


def check_readable(collections: Iterable[str]) -> None:
    """Forbidden (403, Qdrant's words) unless the request may read every one of
    `collections`, as Qdrant checks the collections a query looks up."""
    access = REQUEST_ACCESS.get()
    if access is None:
        return
    for name in collections:
        try:
            access.check(Level.READ, name)
        except AuthError as exc:
            raise Forbidden(exc.message) from None


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def _same(expected: bytes | None, given: bytes) -> bool:
    return expected is not None and hmac.compare_digest(expected, given)


def extract_key(get: Callable[[str], str | None]) -> str | None:
    """The key of a request: `api-key`, else `Authorization: Bearer <key>`."""
    key = get(API_KEY_HEADER)
    if key is not None:
        return key
    bearer = get("authorization")
    if bearer is not None and bearer.startswith("Bearer "):
        return bearer[len("Bearer ") :]
    return None


class Authenticator:
    def __init__(
        self,
        toc: Callable[[], TableOfContents],
        api_key: str | None,
        read_only_key: str | None = None,
        alt_api_key: str | None = None,
        jwt_rbac: bool = False,
    ) -> None:
        """`toc`: how to reach the collections (for `value_exists`)."""
        self._toc = toc
        self._rw = [_digest(k) for k in (api_key, alt_api_key) if k]
        self._ro = _digest(read_only_key) if read_only_key else None
        self._secrets = [k for k in (api_key, alt_api_key) if k] if jwt_rbac else []

    @property
    def jwt_enabled(self) -> bool:
        return bool(self._secrets)

    def authenticate(self, get: Callable[[str], str | None]) -> Access:
        """The access a request's headers (metadata) grant; AuthError when none. May look
        into a collection (`value_exists`)."""
        access, pending = self.identify(get)
        if pending is not None:
            pending()
        return access

    def identify(
        self, get: Callable[[str], str | None]
    ) -> tuple[Access, Callable[[], None] | None]:
        """As `authenticate`, with the `value_exists` lookup (which reads a collection, so
        it belongs off the event loop) left to the caller: run the second value, when there
        is one, before trusting the first."""
        key = extract_key(get)
        if key is None:
            raise unauthorized(NO_KEY)
        digest = _digest(key)
        # Every key is compared, whichever matches, so timing tells nothing either.
        rw = [_same(d, digest) for d in self._rw]
        ro = _same(self._ro, digest)
        if any(rw):
            return FULL, None
        if ro:
            return READ_ONLY, None
        error: AuthError | None = None
        for secret in self._secrets:
            try:
                claims = decode(key, secret)
            except AuthError as exc:
                error = error or exc
                continue
            if claims is None:
                continue
            access = parse_access(claims.get("access", "m"))
            value_exists = claims.get("value_exists")
            if value_exists is None:
                return access, None
            name, conditions = parse_value_exists(value_exists)
            return access, functools.partial(self._check_value_exists, name, conditions)
        raise error or unauthorized(BAD_KEY)

    def _check_value_exists(self, name: str, conditions: list[dict[str, Any]]) -> None:
        toc = self._toc()
        # The claim may name an alias: it is resolved on every request, like any other name.
        collection = toc.collections.get(name)
        if collection is None:
            target = toc.aliases.resolve(name)
            collection = toc.collections.get(target) if target is not None else None
        if collection is None:
            raise forbidden(STATEFUL_FAILED)
        if not collection.count(parse_filter({"must": conditions}), exact=True):
            raise unauthorized(STATEFUL_FAILED)


def decode(token: str, secret: str) -> dict[str, Any] | None:
    """The claims of a JWT signed with `secret`; None when `token` is no JWT at all (or not
    one of Qdrant's: another algorithm, claims of the wrong type), AuthError (403) when it is
    expired or signed with another key."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={
                "verify_aud": False,
                "verify_iss": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_sub": False,  # Qdrant's `sub` may be null; checked below
                "verify_jti": False,  # a claim Qdrant does not read
                "verify_exp": False,  # below, once the claims' types are Qdrant's
                "require": [],
            },
        )
    except jwt.InvalidSignatureError:
        raise forbidden("InvalidSignature") from None
    except jwt.PyJWTError:
        return None
    if not isinstance(claims, dict) or not _typed_as_qdrant_claims(claims):
        return None
    # jsonwebtoken's rule (Qdrant's library): expired when exp < now - leeway, whole seconds.
    exp = claims.get("exp")
    if exp is not None and exp < int(time.time()) - JWT_LEEWAY_S:
        raise forbidden("ExpiredSignature")
    return claims


def _typed_as_qdrant_claims(claims: dict[str, Any]) -> bool:
    """Whether Qdrant's `Claims` struct would deserialize these: `sub` a string, `exp` an
    unsigned 64-bit integer (each may be absent or null). PyJWT takes `exp` as a float or a
    numeric string and any `sub`; Qdrant's decode fails on them, and a token it cannot
    decode is no key at all (401)."""
    sub = claims.get("sub")
    if sub is not None and not isinstance(sub, str):
        return False
    exp = claims.get("exp")
    if exp is None:
        return True
    return isinstance(exp, int) and not isinstance(exp, bool) and 0 <= exp < 2**64


def parse_access(raw: Any) -> Access:
    """The `access` claim; `unauthorized(BAD_KEY)` for a shape Qdrant would not decode."""
    if raw in ("r", "m"):
        return Access(raw)
    if not isinstance(raw, list):
        raise unauthorized(BAD_KEY)
    rights: dict[str, str] = {}
    for item in raw:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("collection"), str)
            or item.get("access") not in COLLECTION_MODES
        ):
            raise unauthorized(BAD_KEY)
        name = item["collection"]
        if "payload" in item and item["payload"] is not None:
            # Qdrant >= 1.15 refuses the deprecated payload restriction.
            raise unauthorized(
                f"{ACCESS_ITEM}.payload: The 'payload' constraint is deprecated and should "
                "not be used"
            )
        if name in rights:
            raise unauthorized(f"{ACCESS_ITEM}.collection: Collection name should be unique")
        rights[name] = item["access"]
    return Access(None, rights)


def parse_value_exists(raw: Any) -> tuple[str, list[dict[str, Any]]]:
    """`{collection, matches: [{key, value}]}` -> (collection, filter conditions)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("collection"), str):
        raise unauthorized(BAD_KEY)
    matches = raw.get("matches")
    if not isinstance(matches, list):
        raise unauthorized(BAD_KEY)
    conditions: list[dict[str, Any]] = []
    for pair in matches:
        if not isinstance(pair, dict) or not isinstance(pair.get("key"), str):
            raise unauthorized(BAD_KEY)
        value = pair.get("value")
        if not isinstance(value, (str, int)):  # Qdrant: keyword, integer or bool
            raise unauthorized(BAD_KEY)
        conditions.append({"key": pair["key"], "match": {"value": value}})
    return raw["collection"], conditions
