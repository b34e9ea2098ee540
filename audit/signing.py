"""The Ed25519 key that signs checkpoints, and the public keys a verifier trusts."""

import base64
import functools
import logging
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_b64(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def write_new_key(path: Path) -> Ed25519PrivateKey:
    """Generate a key into `path`, readable by its owner only."""
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_key_pem(key))
    return key


@functools.cache
def signing_key() -> Ed25519PrivateKey:
    """The configured key; in DEBUG a missing key file is generated once (never in production)."""
    if settings.POSTURE_SIGNING_KEY:
        pem = settings.POSTURE_SIGNING_KEY.replace("\\n", "\n").encode()
    else:
        path = Path(settings.POSTURE_SIGNING_KEY_FILE)
        if not path.is_file():
            if not settings.DEBUG:
                raise ImproperlyConfigured(f"signing key file {path} does not exist")
            logger.warning("generating a local checkpoint signing key", extra={"path": str(path)})
            try:
                return write_new_key(path)
            except FileExistsError:
                pass  # another process generated it just now
        pem = path.read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured("the checkpoint signing key must be an Ed25519 key")
    return key


def current_public_key() -> str:
    return public_key_b64(signing_key().public_key())


def trusted_public_keys() -> set[str]:
    """The current key and the earlier ones listed in POSTURE_TRUSTED_PUBLIC_KEYS."""
    return {current_public_key(), *settings.POSTURE_TRUSTED_PUBLIC_KEYS}


def sign(data: bytes) -> str:
    return base64.b64encode(signing_key().sign(data)).decode()


def signature_valid(*, public_key: str, signature: str, data: bytes) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))
        key.verify(base64.b64decode(signature, validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True
