"""Connector credentials encrypted at rest (Fernet, with key rotation).

Keys come from `settings.CONNECTOR_SECRET_KEYS`: a list of Fernet keys (32 url-safe
base64-encoded bytes each, as made by `Fernet.generate_key()`). The first key encrypts;
every key decrypts, so a new key is rolled out by putting it first and keeping the old
ones until `rotate()` has re-encrypted every stored token. When the setting is unset,
settings derive one key from SECRET_KEY with `derive_key()`.

Nothing here ever puts a secret value, or a key, into an exception message.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: Fixed, public domain-separation values of the key derivation: changing them changes
#: the derived key and makes every stored credential unreadable.
_KDF_SALT = b"enterprise-assistant/connectors/secrets/v1"
_KDF_INFO = b"CONNECTOR_SECRET_KEYS fallback derived from SECRET_KEY"


class SecretsError(Exception):
    """Stored credentials cannot be encrypted or decrypted; the message holds no secret."""


def derive_key(secret_key: str) -> str:
    """A Fernet key derived from Django's SECRET_KEY (HKDF-SHA256), for when
    CONNECTOR_SECRET_KEYS is unset. Changing SECRET_KEY then makes stored credentials
    unreadable, so production should set CONNECTOR_SECRET_KEYS explicitly."""
    if not secret_key:
        raise SecretsError("SECRET_KEY is empty; cannot derive a key for connector credentials.")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_KDF_SALT, info=_KDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode("utf-8"))).decode("ascii")


def parse_keys(raw: str | Iterable[str]) -> list[str]:
    """Split and validate CONNECTOR_SECRET_KEYS ("key1,key2" or a list); raise SecretsError
    (naming the key's position, never its value) when one is not a valid Fernet key."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    keys = [item.strip() for item in items if item and item.strip()]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError, binascii.Error):
            raise SecretsError(
                f"CONNECTOR_SECRET_KEYS: key number {position} is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes; make one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)."
            ) from None
    return keys


def _configured_keys() -> list[str]:
    from django.conf import settings

    keys = getattr(settings, "CONNECTOR_SECRET_KEYS", None)
    if not keys:
        keys = [derive_key(settings.SECRET_KEY)]
    return parse_keys(keys)


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in _configured_keys()])


_UNREADABLE = "Stored connector credentials cannot be decrypted with the configured CONNECTOR_SECRET_KEYS"


def encrypt_secrets(values: dict[str, str]) -> str:
    """Encrypt a mapping of secret field -> value with the first configured key ("" for {})."""
    if not values:
        return ""
    if not all(isinstance(name, str) and isinstance(value, str) for name, value in values.items()):
        raise SecretsError("Connector credentials must be text (a mapping of field name to string).")
    payload = json.dumps(values, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return _fernet().encrypt(payload).decode("ascii")


def decrypt_secrets(token: str) -> dict[str, str]:
    """The mapping `encrypt_secrets` was given ({} for ""); SecretsError when no key fits."""
    if not token:
        return {}
    try:
        payload = _fernet().decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError, ValueError, TypeError):
        raise SecretsError(f"{_UNREADABLE} (the key was changed or removed, or the value is corrupt).") from None
    try:
        values = json.loads(payload.decode("utf-8"))
    except ValueError:
        values = None
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise SecretsError(f"{_UNREADABLE} (the decrypted value is not a credentials mapping).")
    return values


def rotate(token: str) -> str:
    """Re-encrypt a token with the first configured key (decrypting it with any of them)."""
    if not token:
        return ""
    try:
        return _fernet().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeEncodeError, ValueError, TypeError):
        raise SecretsError(f"{_UNREADABLE} (the key was changed or removed, or the value is corrupt).") from None
