"""Secrets at rest: values sealed with the operator's encryption key (AES-256-GCM).

The operator gives any key string of at least 16 characters (`TIDEGATE_ENCRYPTION_KEY`); the AES
key is derived from it with HKDF-SHA256, so a passphrase and a random token both work. A sealed
value is `v1:` + base64url(nonce || ciphertext+tag), bound to a context string (e.g. the registry
name) so a value copied into another row does not open there. No key, no sealing: the caller
refuses to store a secret; a wrong key is a `SecretsKeyError` that says so on use.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tidegate.core.errors import UsageError

__all__ = ["MIN_KEY_LENGTH", "SecretBox", "SecretsKeyError", "open_box"]

MIN_KEY_LENGTH = 16
_VERSION = "v1"
_NONCE = 12
_INFO = b"tidegate secrets at rest v1"


class SecretsKeyError(UsageError):
    """No encryption key, a key too short, or a key that does not open a stored secret."""


@dataclass(frozen=True, slots=True)
class SecretBox:
    """Seals and opens secrets with one derived AES-256-GCM key."""

    _key: bytes

    def seal(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(self._key).encrypt(nonce, plaintext.encode(), context.encode())
        return f"{_VERSION}:" + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str, *, context: str) -> str:
        version, _, body = sealed.partition(":")
        if version != _VERSION:
            raise SecretsKeyError(f"{context}: stored secret has unknown format {version!r}")
        try:
            raw = base64.urlsafe_b64decode(body.encode())
            plain = AESGCM(self._key).decrypt(raw[:_NONCE], raw[_NONCE:], context.encode())
        except (InvalidTag, ValueError) as exc:
            raise SecretsKeyError(
                f"{context}: the stored credentials cannot be decrypted with the configured "
                "encryption key (TIDEGATE_ENCRYPTION_KEY differs from the one they were stored "
                "with); set the original key or enter the credentials again"
            ) from exc
        return plain.decode()


def open_box(key: str | None) -> SecretBox:
    """The box of the operator's key; `SecretsKeyError` when there is none or it is too short."""
    if not key:
        raise SecretsKeyError(
            "no encryption key: credentials are stored encrypted, so set TIDEGATE_ENCRYPTION_KEY "
            f"(at least {MIN_KEY_LENGTH} characters) before storing or using them"
        )
    if len(key) < MIN_KEY_LENGTH:
        raise SecretsKeyError(
            f"encryption key: {len(key)} characters is too short; give at least {MIN_KEY_LENGTH}"
        )
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(key.encode())
    return SecretBox(derived)
