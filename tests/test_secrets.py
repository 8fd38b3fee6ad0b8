"""shared.secrets (generated once in development, required in production) and the MQTT credential
settings (MQTT_USERNAME / MQTT_PASSWORD / MQTT_PASSWORD_FILE override the URL's user info)."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest

from shared import secrets
from shared.settings import Settings, parse_mqtt_url


def dev(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, rotorwatch_env="development")


def test_development_creates_once_with_private_modes(tmp_path: Path) -> None:
    calls: list[int] = []

    def make() -> bytes:
        calls.append(1)
        return b"s3cret"

    assert secrets.load_or_create(dev(tmp_path), "k", make) == b"s3cret"
    assert secrets.load_or_create(dev(tmp_path), "k", lambda: b"other") == b"s3cret"
    assert calls == [1]
    path = secrets.secret_file(dev(tmp_path), "k")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["k"]  # no temporary files left


def test_production_refuses_to_create_and_names_the_variable(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.rotorwatch_env == "production"
    with pytest.raises(secrets.MissingSecret, match="set MODEL_SIGNING_KEY_FILE"):
        secrets.load_or_create(settings, "k", lambda: b"x", variable="MODEL_SIGNING_KEY_FILE")
    assert not secrets.secret_file(settings, "k").exists()
    secrets.write_secret(settings, "k", b"given")
    assert secrets.load_or_create(settings, "k", lambda: b"x") == b"given"


def test_concurrent_creators_agree_on_one_secret(tmp_path: Path) -> None:
    results: list[bytes] = []
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        barrier.wait()
        results.append(secrets.load_or_create(dev(tmp_path), "k", lambda: f"v{i}".encode()))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and len(set(results)) == 1


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x"])
def test_secret_names_are_plain_file_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        secrets.secret_file(dev(tmp_path), name)


def test_mqtt_credentials_override_the_url(tmp_path: Path) -> None:
    url = "mqtt://urluser:urlpass@broker:1884"
    assert Settings(mqtt_url=url).broker.username == "urluser"
    b = Settings(mqtt_url=url, mqtt_username="ingest", mqtt_password="pw").broker
    assert (b.host, b.port, b.username, b.password) == ("broker", 1884, "ingest", "pw")
    pw_file = tmp_path / "pw"
    pw_file.write_text("from-file\n")
    b = Settings(mqtt_url="mqtt://broker", mqtt_username="scorer", mqtt_password_file=pw_file).broker
    assert (b.username, b.password) == ("scorer", "from-file")
    with pytest.raises(ValueError, match="MQTT_PASSWORD_FILE"):
        _ = Settings(mqtt_password_file=tmp_path / "missing").broker
    assert "pw" not in repr(Settings(mqtt_password="pw"))  # a SecretStr: never in logs or reprs


def test_scripts_fall_back_to_the_development_device_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MQTT_USERNAME", raising=False)
    monkeypatch.delenv("MQTT_PASSWORD", raising=False)
    plain = parse_mqtt_url("mqtt://127.0.0.1:1883")
    assert secrets.development_mqtt_login(tmp_path) is None
    assert secrets.with_device_login(plain, tmp_path) == plain  # nothing to fall back to: anonymous
    secrets.write_secret(dev(tmp_path), secrets.MQTT_CREDENTIALS, json.dumps({"device": "d-pw"}).encode())
    b = secrets.with_device_login(plain, tmp_path)
    assert (b.host, b.port, b.username, b.password) == ("127.0.0.1", 1883, "device", "d-pw")
    monkeypatch.setenv("MQTT_USERNAME", "pump")
    monkeypatch.setenv("MQTT_PASSWORD", "p-pw")
    assert secrets.with_device_login(plain, tmp_path).username == "pump"
    given = parse_mqtt_url("mqtt://me:mine@h")
    assert secrets.with_device_login(given, tmp_path) == given
    assert secrets.development_mqtt_login(tmp_path, "nobody") is None
