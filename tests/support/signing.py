"""A fixed model-signing key pair for tests: services built with ``model_verify_key=VERIFY_KEY`` trust
announcements signed by :data:`SIGNER` (:func:`signed`), and no other."""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.learning.signing import ModelSigner, raw_public
from shared.messages import ModelAnnouncement

#: Deterministic test key (never used outside tests).
SIGNER = ModelSigner(
    Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"rotorwatch test model key").digest())
)
#: ``MODEL_VERIFY_KEY`` of :data:`SIGNER` (base64 of the raw public key).
VERIFY_KEY = base64.b64encode(raw_public(SIGNER.private.public_key())).decode()
#: Another key: what a forger signs with.
FORGER = ModelSigner(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"not the calibrator").digest()))


def signed(ann: ModelAnnouncement) -> ModelAnnouncement:
    """``ann`` signed with the test key."""
    return SIGNER.sign(ann)
