"""Bearer tokens → principals.

A token is verified with exactly one key source, chosen by configuration: a PEM public key
(`SISADA_JWT_PUBLIC_KEY`), else a JWKS endpoint (`SISADA_JWKS_URL`), else a shared HS256
secret (`SISADA_JWT_SECRET`, or the development key file created on first use).

Role names are policy data: the verifier is told which roles exist, which one means
"no token", which levels of area each role's token may carry and which kind of officer
it must name, and never names a role itself. A token that fits none of this is refused:
an area of a level its role may not hold, an `officer_id` that names no officer of the
kind its role needs (checked against the officer table, remembered for a short while), a
lifetime beyond `max_token_lifetime_seconds`, a claim of the wrong type (`"iat": "0"`,
`"officer_id": "5"`, `null`, NaN …): each a 401, never a 500.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import get_default_algorithms
from starlette.concurrency import run_in_threadpool

from gateway.persisted.names import is_client_name
from gateway.settings import Settings
from policies.area_codes import is_area_code, level_of
from policies.principal import Principal, dev_subject
from resolvers.db import DatabaseUnavailableError

# Far above any real token; stops a huge header from being base64-decoded and parsed.
MAX_TOKEN_LENGTH = 8192
# A report records its submitter's subject (resolvers.models.Report.submitted_by).
MAX_SUBJECT_LENGTH = 255
# Officers remembered at most (id → kind): a bound on memory, far above any office's staff.
MAX_CACHED_OFFICERS = 10_000
# The JWKS fetch blocks its caller; keep a slow identity provider from stalling requests.
JWKS_TIMEOUT_SECONDS = 5.0

_REQUIRED_CLAIMS = ("exp", "iss", "aud", "role")
# NumericDate claims: checked here, as JSON integers. PyJWT compares `int(value)`, which
# takes "0", " 5", "1_0", true and 1.9 alike; this verifier takes none of them.
_TIME_CLAIMS = ("exp", "nbf", "iat")
# Far beyond any real date, far below where arithmetic or a database column would overflow.
MAX_NUMERIC_DATE = 2**53

# Most specific first: several PyJWT errors subclass DecodeError / InvalidTokenError.
_MESSAGES: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidSignatureError, "invalid token signature"),
    (jwt.InvalidAlgorithmError, "token algorithm not accepted"),
    (jwt.InvalidIssuerError, "invalid issuer"),
    (jwt.InvalidAudienceError, "invalid audience"),
    (jwt.DecodeError, "malformed token"),
)


class AuthError(Exception):
    """A request whose credentials cannot be accepted.

    `message` is safe to show to the client: it never contains the token or a key.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthUnavailableError(AuthError):
    """The token could not be checked (the JWKS endpoint is unreachable or broken).

    Not the caller's fault: worth a retry, and an HTTP layer may answer 503 rather than 401.
    """

    def __init__(self) -> None:
        super().__init__("cannot verify token right now")


class AuthConfigError(ValueError):
    """The token settings cannot work together (raised at start-up, never per request)."""


OfficerLookup = Callable[[int], Awaitable[str | None]]


class OfficerDirectory:
    """Officer id → kind ("field", "supervisor"; None: no such officer), from the officer
    table, each answer remembered for `ttl_seconds` so that a token costs no query per
    request. Unknown ids are remembered too: a flood of them asks the table once each."""

    def __init__(self, lookup: OfficerLookup, ttl_seconds: float,
                 max_entries: int = MAX_CACHED_OFFICERS) -> None:
        self._lookup = lookup
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._cache: dict[int, tuple[float, str | None]] = {}

    async def kind_of(self, officer_id: int) -> str | None:
        now = time.monotonic()
        cached = self._cache.get(officer_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            kind = await self._lookup(officer_id)
        except DatabaseUnavailableError as exc:
            raise AuthUnavailableError() from exc
        self._cache.pop(officer_id, None)
        while len(self._cache) >= self._max_entries:
            del self._cache[next(iter(self._cache))]  # the oldest entry
        self._cache[officer_id] = (now + self._ttl, kind)
        return kind


def dev_secret(settings: Settings) -> str:
    """The HS256 key: `jwt_secret` if set, else the development key file (created if absent).

    The `sisada token` CLI and a server started in the same working directory share the file,
    so tokens printed by one are accepted by the other.
    """
    if settings.jwt_secret:
        return settings.jwt_secret
    path = Path(settings.dev_key_file)
    secret = _read_key(path)
    if secret is None:
        _create_key(path)
        secret = _read_key(path)
    if not secret:
        raise AuthConfigError(f"development key file {path} is empty")
    return secret


def _read_key(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None


def _create_key(path: Path) -> None:
    # Written under a private name and hard-linked into place: the link either wins or finds
    # the file another process just created, so concurrent starters agree on one key and no
    # reader ever sees a half-written file.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
        os.chmod(tmp, 0o600)  # exactly 0600, whatever the umask
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class TokenVerifier:
    """Turns an `Authorization` header into a `Principal`, or raises `AuthError`."""

    def __init__(
        self,
        settings: Settings,
        known_roles: frozenset[str],
        anonymous_role: str,
        *,
        jurisdictions: Mapping[str, frozenset[str]] | None = None,
        officer_kinds: Mapping[str, str] | None = None,
        officers: OfficerDirectory | None = None,
    ) -> None:
        """`jurisdictions`: the levels of area each role's token may carry (a role not
        listed carries none); `officer_kinds`: the kind of officer each role's token must
        name (a role not listed names none); `officers` answers which kind an officer is
        (without it, every token that names an officer is refused). Policy data, all."""
        if not anonymous_role:
            raise AuthConfigError("the anonymous role must be named")
        self._known_roles = known_roles
        self._anonymous_role = anonymous_role
        self._jurisdictions = dict(jurisdictions or {})
        self._officer_kinds = dict(officer_kinds or {})
        self._officers = officers
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway = settings.jwt_leeway_seconds
        self._max_lifetime = settings.max_token_lifetime_seconds
        self._key: Any = None
        self._jwks: jwt.PyJWKClient | None = None

        requested = check_key_settings(settings)
        if settings.jwt_public_key:
            self._key, self._algorithms = _prepare_key(
                public_key_pem(settings.jwt_public_key), requested, "SISADA_JWT_PUBLIC_KEY")
        elif settings.jwks_url:
            self._algorithms = requested
            if not self._algorithms:
                raise AuthConfigError(
                    "SISADA_JWT_ALGORITHMS names no asymmetric algorithm (e.g. RS256) "
                    "to use with SISADA_JWKS_URL"
                )
            try:
                self._jwks = jwt.PyJWKClient(
                    settings.jwks_url, cache_keys=True, timeout=JWKS_TIMEOUT_SECONDS
                )
            except jwt.PyJWKClientError as exc:
                raise AuthConfigError("SISADA_JWKS_URL must be an http(s) URL") from exc
        else:
            self._key, self._algorithms = _prepare_key(
                dev_secret(settings), requested, "SISADA_JWT_SECRET"
            )

    @property
    def may_block(self) -> bool:
        """True when verifying can fetch keys over the network (a JWKS URL)."""
        return self._jwks is not None

    async def authenticate(self, authorization_header: str | None) -> Principal:
        """`verify`, then the officer the token names looked up: the whole check."""
        if self.may_block:
            # A JWKS fetch is blocking I/O: keep it off the event loop.
            principal = await run_in_threadpool(self.verify, authorization_header)
        else:
            principal = self.verify(authorization_header)
        await self._check_officer(principal)
        return principal

    def verify(self, authorization_header: str | None) -> Principal:
        """The token's signature and claims; not yet whether its officer exists."""
        if authorization_header is None:
            return Principal(role=self._anonymous_role)
        token = _bearer_token(authorization_header)
        claims = self._decode(token)
        _check_claim_types(claims)
        self._check_times(claims)
        return self._principal(claims)

    async def _check_officer(self, principal: Principal) -> None:
        kind = self._officer_kinds.get(principal.role)
        if kind is None or principal.officer_id is None:
            return  # `_principal` has already refused a token whose officer_id is amiss
        if self._officers is None or await self._officers.kind_of(principal.officer_id) != kind:
            raise AuthError("unknown officer")

    def _decode(self, token: str) -> dict[str, Any]:
        key = self._key if self._jwks is None else _jwks_key(self._jwks, token)
        try:
            return jwt.decode(
                token,
                key=key,
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                # The time claims and `sub` are checked here, types first (`_check_times`,
                # `_principal`): PyJWT's own checks differ between versions.
                options={"require": list(_REQUIRED_CLAIMS), "verify_exp": False,
                         "verify_nbf": False, "verify_iat": False, "verify_sub": False},
            )
        except jwt.MissingRequiredClaimError as exc:
            # `exc.claim` is one of _REQUIRED_CLAIMS, never data from the token.
            raise AuthError(f"token lacks the {exc.claim!r} claim") from exc
        except jwt.PyJWTError as exc:
            raise AuthError(_message_for(exc)) from exc

    def _check_times(self, claims: dict[str, Any]) -> None:
        """Expiry, `nbf` and `iat` within the leeway, and no token living longer than the
        setting allows, whoever signed it: not from its `iat`, when it has one, and not
        from now. `_check_claim_types` has made them integers."""
        now = time.time()
        expires = claims["exp"]
        if expires <= now - self._leeway:
            raise AuthError("token expired")
        for claim in ("nbf", "iat"):
            if claims.get(claim, 0) > now + self._leeway:
                raise AuthError("token not yet valid")
        issued = claims.get("iat")
        if issued is not None and expires - issued > self._max_lifetime:
            raise AuthError("token lifetime too long")
        if expires - now > self._max_lifetime + self._leeway:
            raise AuthError("token lifetime too long")

    def _check_jurisdiction(self, role: str, area: str | None) -> None:
        """A role the policy gives levels carries an area of one of them; any other role
        carries none (a district token with the city's code never reaches a rule)."""
        levels = self._jurisdictions.get(role)
        if levels is None:
            if area is not None:
                raise AuthError("area not allowed for this role")
        elif area is None:
            raise AuthError("token lacks an area")
        elif level_of(area) not in levels:
            raise AuthError("area not allowed for this role")

    def _principal(self, claims: dict[str, Any]) -> Principal:
        role = claims["role"]
        # A token claiming the anonymous role is odd enough to refuse outright.
        if (
            not isinstance(role, str)
            or role not in self._known_roles
            or role == self._anonymous_role
        ):
            raise AuthError("unknown role")
        # Present means well-formed: an explicit `null` is not an absent claim.
        area = claims.get("area")
        if "area" in claims and not (isinstance(area, str) and is_area_code(area)):
            raise AuthError("malformed area")
        self._check_jurisdiction(role, area)
        officer_id = _officer_id(claims)
        if (officer_id is None) != (role not in self._officer_kinds):
            raise AuthError("officer_id not allowed for this role" if officer_id is not None
                            else "token lacks an officer_id")
        subject = claims.get("sub")
        # Stored with the caller's reports: no control character, no lone surrogate
        # (PostgreSQL's text holds neither).
        if "sub" in claims and not (isinstance(subject, str)
                                    and 0 < len(subject) <= MAX_SUBJECT_LENGTH
                                    and subject.isprintable()):
            raise AuthError("malformed subject")
        client = claims.get("client")
        if "client" in claims and not (isinstance(client, str) and is_client_name(client)):
            raise AuthError("malformed client")
        return Principal(
            role=role,
            area=area,
            officer_id=officer_id,
            subject=subject,
            issuer=claims["iss"],
            client=client,
        )


def public_key_pem(value: str) -> str:
    """SISADA_JWT_PUBLIC_KEY as PEM text: env files often carry its newlines as "\\n"."""
    return value.replace("\\n", "\n").strip()


def check_key_settings(settings: Settings) -> list[str]:
    """The algorithms tokens may use, or `AuthConfigError` (naming settings, never a value).

    Cheap and offline, so `sisada serve` calls it before any migration or worker. With a
    public key or a JWKS, tokens are asymmetric: SISADA_JWT_PUBLIC_KEY must parse as a PEM
    public key (a file path or a secret pasted there would otherwise become an HS256
    shared secret anyone can sign with), and an HMAC algorithm (HS*) in
    SISADA_JWT_ALGORITHMS refuses the start-up instead of being dropped in silence.
    """
    requested = [alg for alg in settings.jwt_algorithms if alg.lower() != "none"]
    if not (settings.jwt_public_key or settings.jwks_url):
        return requested
    if settings.jwt_public_key:
        try:
            load_pem_public_key(public_key_pem(settings.jwt_public_key).encode())
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise AuthConfigError(
                "SISADA_JWT_PUBLIC_KEY is not a PEM public key (the key's text, "
                "-----BEGIN PUBLIC KEY----- ..., not a file path)") from exc
    source = "SISADA_JWT_PUBLIC_KEY" if settings.jwt_public_key else "SISADA_JWKS_URL"
    hmac_algorithms = [alg for alg in requested if alg.upper().startswith("HS")]
    if hmac_algorithms:
        raise AuthConfigError(
            f"SISADA_JWT_ALGORITHMS names {', '.join(hmac_algorithms)} beside {source}: "
            "an HMAC algorithm is never accepted with a public key (algorithm confusion); "
            "name the key's own, e.g. [\"RS256\"]")
    return requested


def _prepare_key(key: str, algorithms: list[str], setting: str) -> tuple[Any, list[str]]:
    """Load the key once and keep only the algorithms it can verify.

    Filtering by key type is what stops algorithm confusion: PyJWT refuses a PEM public key
    as an HMAC secret, so HS* never survives next to a public key, nor RS*/ES* next to a secret.
    """
    available = get_default_algorithms()
    prepared: Any = None
    usable: list[str] = []
    for alg in algorithms:
        algorithm = available.get(alg)
        if algorithm is None:
            raise AuthConfigError(f"SISADA_JWT_ALGORITHMS names an unknown algorithm {alg!r}")
        try:
            candidate = algorithm.prepare_key(key)
        except (jwt.InvalidKeyError, ValueError, TypeError):
            continue
        if prepared is None:
            prepared = candidate
        elif type(candidate) is not type(prepared):
            continue
        usable.append(alg)
    if not usable:
        raise AuthConfigError(f"no algorithm in SISADA_JWT_ALGORITHMS fits the key in {setting}")
    return prepared, usable


def _jwks_key(jwks: jwt.PyJWKClient, token: str) -> jwt.PyJWK:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise AuthError("malformed token") from exc
    if not isinstance(kid, str) or not kid:
        raise AuthError("token has no key id")
    try:
        return jwks.get_signing_key(kid)
    except jwt.PyJWKClientConnectionError as exc:
        raise AuthUnavailableError() from exc
    except jwt.PyJWKClientError as exc:
        # With a key set in hand the kid really is unknown; without one (the endpoint sent
        # something other than a JSON object) the provider is at fault, not the caller.
        if jwks.jwk_set_cache is None or jwks.jwk_set_cache.get() is None:
            raise AuthUnavailableError() from exc
        raise AuthError("unknown signing key") from exc
    except (jwt.PyJWTError, ValueError) as exc:
        # A key set that is not JSON or holds no usable keys: the provider's fault.
        raise AuthUnavailableError() from exc


def _bearer_token(header: str) -> str:
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthError("expected an 'Authorization: Bearer <token>' header")
    if len(token) > MAX_TOKEN_LENGTH:
        raise AuthError("token too large")
    return token


def _check_claim_types(claims: dict[str, Any]) -> None:
    """Refuses a time claim that is not a JSON integer in range (`null` included). The
    claim's name, never its value, goes into the message."""
    for claim in _TIME_CLAIMS:
        if claim in claims and not _is_numeric_date(claims[claim]):
            raise AuthError(f"malformed {claim!r} claim")


def _is_numeric_date(value: object) -> bool:
    # bool is an int in Python; a float (1.5, NaN, 1e400 = inf) is refused with it.
    return (isinstance(value, int) and not isinstance(value, bool)
            and 0 <= value < MAX_NUMERIC_DATE)


def _officer_id(claims: dict[str, Any]) -> int | None:
    """A JSON integer, as every other id in a token or a query; "5" is refused, not read."""
    if "officer_id" not in claims:
        return None
    value = claims["officer_id"]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return value
    raise AuthError("malformed officer_id")


def _message_for(exc: jwt.PyJWTError) -> str:
    for kind, message in _MESSAGES:
        if isinstance(exc, kind):
            return message
    return "invalid token"


def default_dev_token_ttl(settings: Settings) -> int:
    """The lifetime of a development token minted without one. It never exceeds what this
    gateway accepts: a tightened SISADA_MAX_TOKEN_LIFETIME_SECONDS shortens it too."""
    return min(settings.dev_token_ttl_seconds, settings.max_token_lifetime_seconds)


def mint_dev_token(
    settings: Settings,
    role: str,
    area: str | None = None,
    officer_id: int | None = None,
    subject: str | None = None,
    ttl_seconds: int | None = None,
    client: str | None = None,
) -> str:
    """A development HS256 token signed with `dev_secret(settings)`.

    The role is not checked here (the policy knows the roles; the CLI asks it). A negative
    `ttl_seconds` mints an already-expired token, which tests use.
    """
    if area is not None and not is_area_code(area):
        raise ValueError("malformed area code")
    ttl = default_dev_token_ttl(settings) if ttl_seconds is None else ttl_seconds
    now = int(time.time())
    # One subject per role, jurisdiction and officer, as the demo data's submitters have.
    default_subject = dev_subject(role, area, officer_id)
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "sub": subject or default_subject,
        "role": role,
    }
    if area is not None:
        claims["area"] = area
    if officer_id is not None:
        claims["officer_id"] = officer_id
    if client is not None:
        claims["client"] = client
    return jwt.encode(claims, dev_secret(settings), algorithm="HS256")
