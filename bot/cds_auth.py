"""CDS Hooks client authentication: the EHR-signed JWT bearer token of CDS Hooks 2.0.1 ("Trusting CDS
Clients"), verified offline against a configured public key (PEM) or JWK Set file. No key is ever fetched:
a token's ``jku`` header is ignored (the key set is agreed out of band).

Checks: an asymmetric algorithm from the allow-list (never ``none`` or HMAC), the signature, ``kid`` in the
key set, ``iss`` (allow-list, when configured), ``aud`` equal to the endpoint URL called, ``exp`` and ``iat``
present and valid, ``jti`` present and not seen before within its lifetime (replay).
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import FaqbotError, SettingsError
from bot.settings import Settings

ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MAX_TOKEN_CHARS = 8192
MAX_SEEN = 100_000


class CdsAuthError(FaqbotError):
    """The request's bearer token is missing or not acceptable (the message says why)."""


@dataclass(frozen=True, slots=True)
class Client:
    """A verified CDS Client: the token's issuer, tenant (if any) and token id."""

    issuer: str
    tenant: str
    jti: str


class JwtVerifier:
    """Verifies CDS Hooks client JWTs with keys read once from files (offline)."""

    def __init__(
        self,
        keys: dict[str, Any],
        issuers: tuple[str, ...],
        algorithms: tuple[str, ...],
        leeway: float = 30.0,
    ) -> None:
        self.keys = keys  # kid -> key ("" when a single PEM key: any kid)
        self.issuers = issuers
        self.algorithms = algorithms
        self.leeway = leeway
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, s: Settings) -> JwtVerifier | None:
        """None when neither FAQBOT_CDS_JWT_PUBLIC_KEY nor FAQBOT_CDS_JWT_JWKS is set."""
        if not s.cds_jwt_public_key and not s.cds_jwt_jwks:
            return None
        algorithms = tuple(a.strip() for a in s.cds_jwt_algorithms.split(",") if a.strip())
        bad = [a for a in algorithms if a not in ASYMMETRIC]
        if bad or not algorithms:
            raise SettingsError(
                f"FAQBOT_CDS_JWT_ALGORITHMS={s.cds_jwt_algorithms!r}: only asymmetric algorithms are allowed "
                f"({', '.join(sorted(ASYMMETRIC))}); CDS Hooks forbids 'none' and HMAC"
            )
        import jwt  # only when a key is configured: a server without CDS Hooks auth never imports it

        keys: dict[str, Any] = {}
        if s.cds_jwt_public_key:
            path = s.resolve(Path(s.cds_jwt_public_key))
            try:
                pem = path.read_bytes()
                from cryptography.hazmat.primitives.serialization import load_pem_public_key

                keys[""] = load_pem_public_key(pem)
            except (OSError, ValueError) as exc:
                raise SettingsError(
                    f"FAQBOT_CDS_JWT_PUBLIC_KEY={str(path)!r}: not a PEM public key ({exc})"
                ) from None
        if s.cds_jwt_jwks:
            path = s.resolve(Path(s.cds_jwt_jwks))
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                for jwk in data["keys"]:
                    if "d" in jwk:
                        raise ValueError(f"key {jwk.get('kid')!r} is a private key")
                    kid = str(jwk.get("kid", ""))
                    if not kid:
                        raise ValueError("every key needs a kid")
                    keys[kid] = jwt.PyJWK.from_dict(jwk).key
            except (OSError, ValueError, KeyError, TypeError, jwt.PyJWTError) as exc:
                raise SettingsError(
                    f"FAQBOT_CDS_JWT_JWKS={str(path)!r}: not a usable JWK Set ({exc})"
                ) from None
        issuers = tuple(i.strip() for i in s.cds_jwt_issuers.split(",") if i.strip())
        return cls(keys, issuers, algorithms)

    def verify(self, authorization: str, audience: str) -> Client:
        """The client behind ``Authorization: Bearer <jwt>`` for a call of ``audience`` (the endpoint URL)."""
        import jwt

        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise CdsAuthError("a CDS Hooks call needs 'Authorization: Bearer <JWT>' signed by the EHR")
        if len(token) > MAX_TOKEN_CHARS:
            raise CdsAuthError(f"the bearer token is longer than {MAX_TOKEN_CHARS} characters")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise CdsAuthError(f"the bearer token is not a JWT ({exc})") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise CdsAuthError(
                f"JWT algorithm {alg!r} is not accepted (accepted: {', '.join(self.algorithms)})"
            )
        if header.get("typ") not in (None, "JWT"):
            raise CdsAuthError(f"JWT typ {header.get('typ')!r} is not 'JWT'")
        kid = str(header.get("kid", ""))
        key = self.keys.get(kid, self.keys.get(""))
        if key is None:
            raise CdsAuthError(f"JWT kid {kid!r} is not in the configured key set")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=audience,
                leeway=self.leeway,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise CdsAuthError(f"the JWT was refused: {exc}") from None
        issuer = str(claims["iss"])
        if self.issuers and issuer not in self.issuers:
            raise CdsAuthError(f"JWT issuer {issuer!r} is not an accepted CDS Client")
        jti = str(claims["jti"])
        self._remember(f"{issuer}\x00{jti}", float(claims["exp"]))
        return Client(issuer, str(claims.get("tenant", "")), jti)

    def _remember(self, key: str, exp: float) -> None:
        now = time.time()
        with self._lock:
            while self._seen:  # oldest first; a full store forgets its oldest tokens
                oldest_exp = next(iter(self._seen.values()))
                if oldest_exp + self.leeway >= now and len(self._seen) < MAX_SEEN:
                    break
                self._seen.popitem(last=False)
            if key in self._seen:
                raise CdsAuthError("the JWT's jti was already used (replay)")
            self._seen[key] = exp
