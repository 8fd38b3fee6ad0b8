"""One place for configuration. Every service builds :class:`Settings` from the environment."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class BrokerAddress(BaseModel):
    """Parsed form of ``MQTT_URL`` (``mqtt://user:pass@host:1883``)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False


class Settings(BaseSettings):
    """Environment configuration (names are the upper-case field names)."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    mqtt_url: str | None = Field(default=None, description="Broker URL; unset means the embedded broker")
    # MQTT identity of this process; overrides the user/password of MQTT_URL (MQTT_PASSWORD_FILE: a file
    # holding the password, e.g. a Docker secret).
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_password_file: Path | None = None
    # Launcher with an external MQTT_URL: {user: password} JSON (python -m deploy.mqtt_auth writes it);
    # each child then connects as its own user.
    mqtt_credentials_file: Path | None = None
    # development: missing secrets are generated once under DATA_DIR/secrets (make run sets it);
    # production: a missing secret is a start-up error.
    rotorwatch_env: Literal["development", "production"] = "production"
    # MQTT session: client ids are rotorwatch-<service>[-<ROTORWATCH_INSTANCE>] (one instance suffix per
    # replica); keepalive in s (a silent broker is noticed after at most twice this, a closed one at once).
    rotorwatch_instance: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]{0,40}$")
    # Scale-out (shared.partition): this process is replica PARTITION_INDEX of PARTITION_COUNT of its stage
    # and handles only its assets' messages (CRC-32 of the asset id mod the count); 1: unpartitioned.
    partition_count: int = Field(default=1, ge=1, le=1024)
    partition_index: int = Field(default=0, ge=0, lt=1024)
    mqtt_keepalive_s: int = Field(default=10, ge=2, le=600)
    # After a lost broker connection, messages published (and acknowledged) within this many seconds
    # before the loss are published again: a broker killed before persisting them (Mosquitto saves every
    # autosave_interval s) loses nothing. Keep it above the broker's autosave interval.
    mqtt_replay_s: float = Field(default=5.0, ge=0, le=3600)
    influx_url: str | None = Field(default=None, description="InfluxDB base URL; unset means SQLite")
    influx_token: str | None = None
    influx_org: str | None = None
    influx_bucket: str = "sensor_data"
    influx_username: str | None = None
    influx_password: str | None = None
    data_dir: Path = Path("var/data")
    model_dir: Path | None = None
    log_level: str = "INFO"

    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    # Gateway first admin (only read when the auth store has no user yet; random ones otherwise).
    rotorwatch_admin_password: SecretStr | None = None
    rotorwatch_admin_api_key: SecretStr | None = None
    embedded_mqtt_port: int = 1883
    # Extra topic filter(s) with raw 3-axis batches, comma separated (e.g. factory/+/vibration/raw).
    vibration_topic_filter: str = ""
    max_payload_bytes: int = 8 * 1024 * 1024
    # Timestamps more than this many seconds ahead of the local clock are rejected (every message).
    max_future_skew_s: float = Field(default=300.0, ge=0)
    # Model signatures (Ed25519): the calibrator signs with the private key file (PEM; development:
    # DATA_DIR/secrets/model_signing.key, generated), scorers/health/gateway verify with the public key
    # (base64 of its 32 raw bytes; development: DATA_DIR/secrets/model_signing.pub).
    model_signing_key_file: Path | None = None
    model_verify_key: str | None = None
    historian_batch_size: int = 500
    historian_flush_seconds: float = 0.5
    historian_buffer_points: int = 200_000
    # Features: readings per batch window (sliding, one vector per reading), and legacy warm-up. 8 lets
    # the guide's 5-minute 1 Hz calibration (300 readings = 37 non-overlapping windows; 240 suffice) train
    # the batch model; at 100 Hz the guide's 1 s windows are BATCH_WINDOW=100.
    batch_window: int = Field(default=8, ge=2, le=10_000)
    legacy_warmup: int = Field(default=30, ge=0, le=10_000)
    # Health: seconds (wall clock) the oldest window of an asset waits for its missing parts (a score, its
    # features, its reading) once neither it nor the awaited stream has moved; then it is assessed without.
    health_join_wait_s: float = Field(default=10.0, gt=0, le=3600)
    # Gateway: seconds to wait for the calibrator's final reply / for other command replies.
    calibration_timeout_s: float = Field(default=300.0, gt=0)
    command_timeout_s: float = Field(default=60.0, gt=0)
    # Calibrator: before collecting, wait at most this many seconds for the store to hold the asset's data
    # up to the requested end ...
    calibration_store_wait_s: float = Field(default=30.0, ge=0, le=3600)
    # ... or until the asset's newest stored data has not moved for this many seconds (historian idle).
    calibration_store_quiet_s: float = Field(default=2.0, ge=0, le=600)
    # Calibrator: calibrations running at once; more wait (CALIBRATING, place in the queue). Unset: CPUs.
    calibration_workers: int | None = Field(default=None, ge=1, le=1024)
    # Reporter: readings (and scores per model, health updates) a report holds at most; a longer period
    # keeps every k-th stored point (k = ceil(count / REPORT_MAX_ROWS)) and says so.
    report_max_rows: int = Field(default=100_000, ge=100, le=10_000_000)
    # Reporter: reports built at once (the others wait); gateway: seconds to wait for a report's reply.
    report_workers: int = Field(default=2, ge=1, le=64)
    report_timeout_s: float = Field(default=120.0, gt=0)
    # Reporter/gateway: largest report document (bytes); a larger one is refused (422, shorter period).
    report_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # Gateway /readyz: the services (comma separated) that must be online and ready; default: every
    # process python -m deploy.run starts except the gateway itself.
    ready_services: str = (
        "ingest,historian,features,calibrator,scorer-legacy,scorer-batch,scorer-autoencoder,health,reporter"
    )
    # Gateway live stream (SSE): per-client queue (oldest dropped when full), heartbeat period in s.
    sse_queue_size: int = Field(default=2048, ge=1)
    sse_heartbeat_s: float = Field(default=15.0, gt=0)

    @model_validator(mode="after")
    def _partition_in_range(self) -> Settings:
        if self.partition_index >= self.partition_count:
            raise ValueError(
                f"PARTITION_INDEX {self.partition_index} must be below PARTITION_COUNT {self.partition_count}"
            )
        return self

    def stage_dir(self, *parts: str) -> Path:
        """A stage's own state directory under ``DATA_DIR``: ``DATA_DIR/<parts>``, plus ``p<i>of<n>`` for
        a replica of a partitioned stage (replicas share the volume, never a state file)."""
        label = None if self.partition_count == 1 else f"p{self.partition_index}of{self.partition_count}"
        base = self.data_dir.joinpath(*parts)
        return base if label is None else base / label

    @property
    def models_path(self) -> Path:
        return self.model_dir if self.model_dir is not None else self.data_dir / "models"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "rotorwatch.db"

    @property
    def development(self) -> bool:
        return self.rotorwatch_env == "development"

    @cached_property
    def broker(self) -> BrokerAddress:
        """The broker address with this process's credentials: ``MQTT_USERNAME`` and ``MQTT_PASSWORD``
        (or the content of ``MQTT_PASSWORD_FILE``) override the user/password of ``MQTT_URL``."""
        b = parse_mqtt_url(self.mqtt_url or f"mqtt://127.0.0.1:{self.embedded_mqtt_port}")
        password = self.mqtt_password.get_secret_value() if self.mqtt_password else None
        if password is None and self.mqtt_password_file is not None:
            try:
                password = self.mqtt_password_file.read_text().strip()
            except OSError as exc:
                raise ValueError(f"MQTT_PASSWORD_FILE {self.mqtt_password_file}: {exc.strerror}") from exc
        return b.model_copy(
            update={
                "username": self.mqtt_username or b.username,
                "password": password if password is not None else b.password,
            }
        )

    @property
    def extra_vibration_filters(self) -> list[str]:
        return [f.strip() for f in self.vibration_topic_filter.split(",") if f.strip()]


def parse_mqtt_url(url: str) -> BrokerAddress:
    """Parse ``mqtt://[user[:pass]@]host[:port]`` (``mqtts://`` turns TLS on, default port 8883)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp"):
        raise ValueError(f"MQTT_URL scheme must be mqtt:// or mqtts://, got {parts.scheme!r}")
    if not parts.hostname:
        raise ValueError(f"MQTT_URL has no host: {url!r}")
    tls = parts.scheme == "mqtts"
    return BrokerAddress(
        host=parts.hostname,
        port=parts.port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )
