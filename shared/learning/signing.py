"""Trusted models: the calibrator signs every model announcement; scorers, health and gateway verify it.

Signature: Ed25519 (RFC 8032, package ``cryptography``) over :func:`signed_message`, the UTF-8 bytes of::

    "rotorwatch-model-signature-v1\\n" + canonical JSON of {
        "asset_id", "model" (kind), "version", "created_at" (ISO-8601 UTC),
        "onnx_sha256" (hex SHA-256 of the ONNX bytes), "manifest" (the typed manifest entry)}

where canonical JSON has sorted keys and no spaces (``json.dumps(sort_keys=True, separators=(",", ":"))``),
so the bytes are the same on both sides whatever the transport's JSON layout. The announcement carries
the signature (base64, 64 bytes) and ``key_id`` (the first 16 hex digits of SHA-256 of the signer's raw
32-byte public key: which key signed, for the operator).

Keys (:func:`load_signer`, :func:`load_verifier`): the calibrator signs with the private key in
``MODEL_SIGNING_KEY_FILE`` (PEM, PKCS#8: ``openssl genpkey -algorithm ed25519 -out model_signing.key``);
every other service verifies with ``MODEL_VERIFY_KEY`` (base64 of the 32 raw public-key bytes:
``openssl pkey -in model_signing.key -pubout -outform DER | tail -c 32 | base64``). With
``ROTORWATCH_ENV=development`` a missing private key is generated once as
``DATA_DIR/secrets/model_signing.key`` and its public key written beside it (``model_signing.pub``);
in production a missing key is a start-up error naming the setting.

A scorer admits a model (:func:`admit`) only when the signature verifies *and* the ONNX graph has the
tensors the manifest names (:func:`check_graph`: one input ``[N, n_features]`` float32, an output ``[N]``
or ``[N, 1]`` float32) *and* a probe inference (:func:`probe`: the baseline means, and means + 1 std, as
two rows) gives one finite raw score per row *and*, for an autoencoder, the sign check
(:func:`check_sign`: scores ≥ 0, higher far from the training mean than at it) passes. The same
:func:`check_model` runs on an imported model before it is saved. Anything else raises
:class:`UntrustedModel` with the reason; the caller keeps its previous model.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.messages import ModelAnnouncement, ModelManifest
from shared.secrets import MissingSecret, load_or_create, secret_file, write_secret
from shared.settings import Settings

if TYPE_CHECKING:  # onnxruntime is imported only where models are loaded (scorers), not to verify
    from .scoring import OnnxModel

log = structlog.get_logger()

CONTEXT = b"rotorwatch-model-signature-v1\n"
#: Development key files under ``DATA_DIR/secrets/``.
PRIVATE_KEY_NAME = "model_signing.key"
PUBLIC_KEY_NAME = "model_signing.pub"


class UntrustedModel(ValueError):
    """A model announcement that must not be loaded; the text is the reason."""


# ---------------------------------------------------------------------------------------------
# What is signed
# ---------------------------------------------------------------------------------------------
def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, ASCII, no NaN: the same bytes for the same JSON data."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode()


def signed_message(ann: ModelAnnouncement, onnx: bytes) -> bytes:
    """The bytes the signature covers (see the module docstring); ``onnx`` are the decoded ONNX bytes."""
    doc = {
        "asset_id": ann.asset_id,
        "model": ann.model,
        "version": ann.version,
        "created_at": ann.created_at.isoformat(),
        "onnx_sha256": hashlib.sha256(onnx).hexdigest(),
        "manifest": ann.manifest.entry(),
    }
    return CONTEXT + canonical_json(doc)


def key_id(public: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(raw_public(public)).hexdigest()[:16]


def raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def onnx_bytes(ann: ModelAnnouncement) -> bytes:
    """The announcement's ONNX bytes (strict base64)."""
    try:
        return base64.b64decode(ann.onnx_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UntrustedModel(f"onnx_b64 is not valid base64: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Signing and verifying
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSigner:
    """The calibrator's private key: :meth:`sign` returns the announcement with its signature."""

    private: Ed25519PrivateKey

    @property
    def key_id(self) -> str:
        return key_id(self.private.public_key())

    def verifier(self) -> ModelVerifier:
        return ModelVerifier(self.private.public_key())

    def sign(self, ann: ModelAnnouncement) -> ModelAnnouncement:
        sig = self.private.sign(signed_message(ann, onnx_bytes(ann)))
        return ann.model_copy(update={"signature": base64.b64encode(sig).decode(), "key_id": self.key_id})

    @classmethod
    def generate(cls) -> ModelSigner:
        return cls(Ed25519PrivateKey.generate())


@dataclass(frozen=True)
class ModelVerifier:
    """The public key every model consumer trusts."""

    public: Ed25519PublicKey

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    def verify(
        self, ann: ModelAnnouncement, *, topic_asset: str | None = None, topic_kind: str | None = None
    ) -> bytes:
        """Check the announcement's signature (and that it is for the topic's asset and kind); return its
        ONNX bytes. :class:`UntrustedModel` with the reason otherwise."""
        where = f"{ann.model} model {ann.version} of {ann.asset_id}"
        if topic_asset is not None and topic_asset != ann.asset_id:
            raise UntrustedModel(f"{where}: announced on the topic of asset {topic_asset!r}")
        if topic_kind is not None and topic_kind != ann.model:
            raise UntrustedModel(f"{where}: announced on the topic of the {topic_kind} model")
        if not ann.signature:
            raise UntrustedModel(f"{where} is unsigned (only models signed by the calibrator are loaded)")
        try:
            sig = base64.b64decode(ann.signature, validate=True)
        except (binascii.Error, ValueError):
            raise UntrustedModel(f"{where}: signature is not valid base64") from None
        onnx = onnx_bytes(ann)
        try:
            self.public.verify(sig, signed_message(ann, onnx))
        except InvalidSignature:
            signer = f"key {ann.key_id}" if ann.key_id else "an unnamed key"
            raise UntrustedModel(
                f"{where}: signature does not verify with the trusted key {self.key_id} "
                f"(announcement names {signer}); forged or altered, or MODEL_VERIFY_KEY is not the "
                "calibrator's key"
            ) from None
        return onnx

    @classmethod
    def from_base64(cls, text: str) -> ModelVerifier:
        """From base64 of the 32 raw public-key bytes (``MODEL_VERIFY_KEY``)."""
        try:
            raw = base64.b64decode(text.strip(), validate=True)
            return cls(Ed25519PublicKey.from_public_bytes(raw))
        except (binascii.Error, ValueError) as exc:
            raise ValueError(
                f"MODEL_VERIFY_KEY must be base64 of a 32-byte Ed25519 public key: {exc}"
            ) from None


# ---------------------------------------------------------------------------------------------
# Keys from configuration
# ---------------------------------------------------------------------------------------------
def _pem(private: Ed25519PrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _private_from_pem(data: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{where}: not an Ed25519 key ({type(key).__name__})")
    return key


def _private_key(settings: Settings) -> Ed25519PrivateKey:
    """``MODEL_SIGNING_KEY_FILE``; in development, else the generated ``DATA_DIR/secrets`` key."""
    if settings.model_signing_key_file is not None:
        path = settings.model_signing_key_file
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise MissingSecret(f"MODEL_SIGNING_KEY_FILE {path}: {exc.strerror or exc}") from None
        return _private_from_pem(data, f"MODEL_SIGNING_KEY_FILE {path}")
    data = load_or_create(
        settings,
        PRIVATE_KEY_NAME,
        lambda: _pem(Ed25519PrivateKey.generate()),
        variable="MODEL_SIGNING_KEY_FILE",
    )
    private = _private_from_pem(data, str(secret_file(settings, PRIVATE_KEY_NAME)))
    public = base64.b64encode(raw_public(private.public_key())) + b"\n"
    pub_file = secret_file(settings, PUBLIC_KEY_NAME)
    if not pub_file.exists() or pub_file.read_bytes() != public:
        write_secret(settings, PUBLIC_KEY_NAME, public)
    return private


def load_signer(settings: Settings) -> ModelSigner:
    """The calibrator's signer (:class:`MissingSecret` in production without ``MODEL_SIGNING_KEY_FILE``)."""
    signer = ModelSigner(_private_key(settings))
    log.info("model_signing_key", key_id=signer.key_id)
    return signer


def load_verifier(settings: Settings) -> ModelVerifier:
    """The trusted public key: ``MODEL_VERIFY_KEY``; in development, else the public half of the
    signing key (generated when missing). :class:`MissingSecret` in production without it."""
    if settings.model_verify_key:
        verifier = ModelVerifier.from_base64(settings.model_verify_key)
    elif settings.rotorwatch_env == "development":
        verifier = ModelVerifier(_private_key(settings).public_key())
    else:
        log.error("secret_missing", variable="MODEL_VERIFY_KEY")
        raise MissingSecret(
            "MODEL_VERIFY_KEY is not set: give the base64 Ed25519 public key of the calibrator's model "
            "signing key (keys are generated only with ROTORWATCH_ENV=development)"
        )
    log.info("model_verify_key", key_id=verifier.key_id)
    return verifier


# ---------------------------------------------------------------------------------------------
# Admitting a model into a scorer: signature, graph, probe
# ---------------------------------------------------------------------------------------------
def _dims(shape: Any) -> list[Any]:
    return list(shape) if isinstance(shape, list | tuple) else []


def check_graph(model: OnnxModel, manifest: ModelManifest) -> None:
    """One input named ``manifest.input`` of float32 ``[N, n_features]`` and an output named
    ``manifest.output`` of float32 ``[N]`` or ``[N, 1]`` (one value per row, as the raw-score rule reads)."""
    inputs, outputs = model.session.get_inputs(), {o.name: o for o in model.session.get_outputs()}
    if len(inputs) != 1:
        raise UntrustedModel(f"ONNX graph has {len(inputs)} inputs; the scorer feeds exactly one")
    inp = inputs[0]
    dims = _dims(inp.shape)
    if (
        inp.name != manifest.input
        or inp.type != "tensor(float)"
        or len(dims) != 2
        or dims[1] != manifest.n_features
    ):
        raise UntrustedModel(
            f"ONNX input {inp.name!r} {inp.type} {inp.shape} is not {manifest.input!r} "
            f"tensor(float) [N, {manifest.n_features}] as the manifest says"
        )
    out = outputs.get(manifest.output)
    if out is None:
        raise UntrustedModel(f"ONNX graph has no output {manifest.output!r} (has {sorted(outputs)})")
    dims = _dims(out.shape)
    one_per_row = len(dims) == 1 or (len(dims) == 2 and dims[1] == 1)
    if out.type != "tensor(float)" or not one_per_row:
        raise UntrustedModel(
            f"ONNX output {out.name!r} {out.type} {out.shape} is not tensor(float) [N] or [N, 1] "
            f"(one score per row for the {manifest.raw_score.transform} raw-score rule)"
        )


def probe_rows(manifest: ModelManifest) -> np.ndarray:
    """Two float32 rows: the baseline means and means + 1 std (in ``features`` order); zeros and ones
    for features without baseline statistics."""
    stats = {f.name: f for f in manifest.baseline.features} if manifest.baseline is not None else {}
    mean = [stats[n].mean if n in stats else 0.0 for n in manifest.features]
    std = [stats[n].std if n in stats else 1.0 for n in manifest.features]
    return np.asarray([mean, np.add(mean, std)], dtype=np.float32)


def probe(model: OnnxModel, manifest: ModelManifest) -> list[float]:
    """Score :func:`probe_rows`: exactly one finite raw score per row, or :class:`UntrustedModel`."""
    rows = probe_rows(manifest)
    try:
        raw = model.raw_scores(rows)
    except Exception as exc:  # onnxruntime raises its own types
        raise UntrustedModel(f"probe inference failed: {type(exc).__name__}: {exc}") from None
    if raw.shape != (len(rows),):
        raise UntrustedModel(f"probe inference gave {raw.size} values for {len(rows)} rows")
    if not np.isfinite(raw).all():
        raise UntrustedModel(f"probe inference gave non-finite raw scores {raw.tolist()}")
    return [float(v) for v in raw]


def sign_rows(manifest: ModelManifest) -> np.ndarray:
    """Raw-feature rows for the sign check: the scaler's mean (z = 0), and the mean moved by
    ±2·clip·std (every standardised input saturated at ±clip); without a scaler, the baseline means
    (:func:`probe_rows`) and means ± 10 std."""
    if manifest.scaler is not None:
        mean = np.asarray(manifest.scaler.mean, dtype=np.float64)
        step = 2.0 * manifest.scaler.clip * np.asarray(manifest.scaler.std, dtype=np.float64)
    else:
        base = probe_rows(manifest).astype(np.float64)
        mean, step = base[0], 10.0 * (base[1] - base[0])
    return np.asarray([mean, mean + step, mean - step], dtype=np.float32)


def check_sign(model: OnnxModel, manifest: ModelManifest) -> None:
    """An autoencoder's raw score is a reconstruction error: a mean of squares, ≥ 0, and larger far from
    the training data than at its mean. Refuse (:class:`UntrustedModel`) a model whose scores at
    :func:`sign_rows` are non-finite or negative, or whose far rows do not score above the mean row (a
    graph that outputs something else, e.g. a sign-flipped score, would call every fault NORMAL)."""
    if manifest.algorithm != "autoencoder":
        return
    rows = sign_rows(manifest)
    try:
        raw = model.raw_scores(rows)
    except Exception as exc:  # onnxruntime raises its own types
        raise UntrustedModel(f"sign probe inference failed: {type(exc).__name__}: {exc}") from None
    if raw.shape != (len(rows),) or not np.isfinite(raw).all():
        raise UntrustedModel(f"sign probe gave {raw.tolist()}: expected {len(rows)} finite scores")
    if (raw < 0).any():
        raise UntrustedModel(
            f"sign probe: raw score {float(raw.min()):.6g} < 0 (at the scaler's mean: {float(raw[0]):.6g}); "
            "a reconstruction error is a mean of squares and never negative: the graph does not output "
            f"the error the manifest's {manifest.raw_score.transform!r} rule expects"
        )
    if not float(raw[1:].max()) > float(raw[0]):
        raise UntrustedModel(
            f"sign probe: rows far from the training mean score {raw[1:].tolist()}, not above the mean's "
            f"{float(raw[0]):.6g}: higher must mean more anomalous"
        )


def check_model(model: OnnxModel, manifest: ModelManifest) -> None:
    """Every check a model must pass before it scores (trained or imported): :func:`check_graph`,
    :func:`probe`, :func:`check_sign`; :class:`UntrustedModel` with the reason."""
    check_graph(model, manifest)
    probe(model, manifest)
    check_sign(model, manifest)


def admit(ann: ModelAnnouncement, verifier: ModelVerifier, *, topic_asset: str | None = None) -> OnnxModel:
    """The announced model, loaded, when it is trusted (signature, then :func:`check_model`); else
    :class:`UntrustedModel` with the reason."""
    from .scoring import OnnxModel

    onnx = verifier.verify(ann, topic_asset=topic_asset)
    try:
        model = OnnxModel.from_bytes(onnx, ann.manifest.entry())
    except ValueError as exc:
        raise UntrustedModel(str(exc)) from None
    check_model(model, ann.manifest)
    return model
