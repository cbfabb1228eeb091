"""The tool's signing keys: the private keys the commands sign with, the public set the LMS reads.

The tool signs one thing: the JWT with which it asks the platform for a service token (OAuth 2
client credentials with a signed assertion, IMS Security Framework 4.1). The platform checks it
against the tool's public key set, which the hub serves at ``/hub/lti13/jwks`` (register that
URL as the tool's "keyset URL"; a platform that takes a pasted key gets ``keys --public``).

``key_dir`` holds one ``<kid>.pem`` per key (RSA 2048, mode 0600; the kid is the key's RFC 7638
thumbprint, so it names the key and nothing else) and ``signing``, the kid in use. Rotation
without a failed request (README): ``keys --new`` adds a key to the published set without using
it; once the platform has fetched the set (or the new key was pasted), ``keys --use KID``;
after the platform's cache time, ``keys --retire OLD`` moves the old key to ``retired/``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

SIGNING = "signing"
RETIRED = "retired"


class KeyFolderError(RuntimeError):
    """The key folder cannot do what was asked; the message says what to do."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    pem: bytes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(private_pem: bytes) -> dict[str, str]:
    """The public half of a PEM private key as a JWK, with its thumbprint as kid."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFolderError("a key that is not RSA: LTI 1.3 signs with RS256")
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    canonical = json.dumps(
        {k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True
    )
    kid = _b64(hashlib.sha256(canonical.encode()).digest())
    return {
        "kty": "RSA",
        "e": jwk["e"],
        "n": jwk["n"],
        "kid": kid,
        "alg": "RS256",
        "use": "sig",
    }


def _keys(key_dir: Path) -> dict[str, bytes]:
    return {p.stem: p.read_bytes() for p in sorted(key_dir.glob("*.pem"))}


def new_key(key_dir: Path) -> str:
    """Add a key to the published set; it signs only if it is the first. Its kid."""
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    kid = public_jwk(pem)["kid"]
    path = key_dir / f"{kid}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    if not (key_dir / SIGNING).exists():
        use_key(key_dir, kid)
    return kid


def use_key(key_dir: Path, kid: str) -> None:
    """Sign with ``kid`` from now on (it must be published already)."""
    if kid not in _keys(key_dir):
        raise KeyFolderError(f"no key {kid} in {key_dir}")
    (key_dir / SIGNING).write_text(kid + "\n")


def retire_key(key_dir: Path, kid: str) -> None:
    """Stop publishing ``kid`` (moved to ``retired/``, never deleted); not the signing key."""
    if kid not in _keys(key_dir):
        raise KeyFolderError(f"no key {kid} in {key_dir}")
    if signing_key(key_dir).kid == kid:
        raise KeyFolderError(
            f"{kid} is the signing key: use another first (keys --use)"
        )
    (key_dir / RETIRED).mkdir(exist_ok=True, mode=0o700)
    (key_dir / f"{kid}.pem").rename(key_dir / RETIRED / f"{kid}.pem")


def signing_key(key_dir: Path) -> SigningKey:
    """The key the tool signs with now."""
    try:
        kid = (key_dir / SIGNING).read_text().strip()
    except FileNotFoundError:
        raise KeyFolderError(
            f"no signing key in {key_dir}: python -m course_hub.lti keys --new"
        ) from None
    keys = _keys(key_dir)
    if kid not in keys:
        raise KeyFolderError(f"{key_dir}/{SIGNING} names {kid}, which is not there")
    return SigningKey(kid, keys[kid])


def public_key_set(key_dir: Path) -> dict[str, list[dict[str, str]]]:
    """Every published key's public half: what ``/hub/lti13/jwks`` serves."""
    return {"keys": [public_jwk(pem) for pem in _keys(key_dir).values()]}
