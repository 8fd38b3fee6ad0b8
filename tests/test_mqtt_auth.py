"""Broker users and ACL (deploy/mqtt_auth.py, deploy/mqtt_acl.py) without a broker.

The expectations are derived from the services' declared routes and publishes
(tests/support/access.py): a route or publish added without the matching ACL change fails here, and
so does an ACL rule no route needs. tests/test_mqtt_auth_brokers.py checks that Mosquitto and the
embedded broker enforce the same files.
"""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from deploy import mqtt_acl, mqtt_auth, run
from deploy.mqtt_acl import Acl, filter_covers, topic_matches
from deploy.run import SERVICES
from shared import topics
from shared.secrets import MQTT_CREDENTIALS, MissingSecret, secret_file
from shared.settings import Settings
from tests.support import access
from tests.support.access import DEVICE_ASSET, DEVICE_USER

HINT = "the declared routes/publishes and deploy/mqtt_auth.py GRANTS disagree: change GRANTS with the routes"


def generated_acl() -> Acl:
    rules = mqtt_auth.acl_rules({DEVICE_USER: [DEVICE_ASSET]}, dev_device=True)
    return Acl.parse(mqtt_auth.acl_text(rules))


# --- password file ---------------------------------------------------------------------------------------
def test_a_mosquitto_passwd_hash_verifies() -> None:
    # Written by Debian's `mosquitto_passwd -b pw alice s3cret` (2.0.11).
    line = (
        "alice:$7$101$fx2ZZmbpdoOO7U8I$EH3BJ3TSxm5P4QDlBU2FHULab1xF6ZbJiQV/sc3fe4FVysXkQLDp6DMd8H7cvbSt"
        "/F8NpXal28FGz9f6nF3c0A=="
    )
    users = mqtt_acl.parse_password_file(line + "\n")
    assert mqtt_acl.verify_password("s3cret", users["alice"])
    assert not mqtt_acl.verify_password("s3cret ", users["alice"])
    salt = base64.b64decode("fx2ZZmbpdoOO7U8I")
    assert mqtt_acl.hash_password("s3cret", salt=salt) == users["alice"]


def test_password_file_round_trip_with_fresh_salts() -> None:
    text = mqtt_acl.password_file_text({"b": "pw-b", "a": "pw-a"})
    users = mqtt_acl.parse_password_file(text)
    assert list(users) == ["a", "b"]
    assert mqtt_acl.verify_password("pw-a", users["a"]) and not mqtt_acl.verify_password("pw-b", users["a"])
    assert mqtt_acl.hash_password("x") != mqtt_acl.hash_password("x")


@pytest.mark.parametrize("encoded", ["", "plain", "$6$abc$def", "$7$x$AAAA$AAAA", "$7$101$!!$AAAA"])
def test_malformed_or_foreign_hashes_never_verify(encoded: str) -> None:
    assert not mqtt_acl.verify_password("", encoded)


@pytest.mark.parametrize("user", ["", "a:b", "a b", "a/b", "a+", "#"])
def test_user_names_that_would_break_the_files_are_refused(user: str) -> None:
    with pytest.raises(ValueError):
        mqtt_acl.password_file_text({user: "pw"})


# --- matching --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flt", "topic", "expected"),
    [
        ("a/+/c", "a/b/c", True),
        ("a/+/c", "a/b/d", False),
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("a/+", "a/b/c", False),
        ("a/b", "a/b", True),
        ("#", "x/y", True),
    ],
)
def test_topic_matches(flt: str, topic: str, expected: bool) -> None:
    assert topic_matches(flt, topic) is expected


@pytest.mark.parametrize(
    ("rule", "flt", "expected"),
    [
        ("a/+/c", "a/+/c", True),
        ("a/+/c", "a/b/c", True),
        ("a/+/c", "a/#", False),
        ("a/b/c", "a/+/c", False),
        ("a/#", "a/+/c", True),
        ("a/#", "a/#", True),
        ("a/+", "a/#", False),
        ("#", "#", True),
    ],
)
def test_a_read_rule_covers_a_subscription_only_whole(rule: str, flt: str, expected: bool) -> None:
    assert filter_covers(rule, flt) is expected


def test_acl_file_semantics() -> None:
    acl = Acl.parse(
        "# comment\ntopic read public/#\n\nuser alice\ntopic write a/+\ntopic b/c\n"
        "pattern write dev/%u/out\npattern read cid/%c\n"
    )
    assert acl.allows(None, "receive", "public/x") and not acl.allows("alice", "receive", "public/x")
    assert acl.allows("alice", "publish", "a/x") and not acl.allows("alice", "receive", "a/x")
    assert acl.allows("alice", "publish", "b/c") and acl.allows("alice", "receive", "b/c")  # readwrite
    assert acl.allows("bob", "publish", "dev/bob/out") and not acl.allows("bob", "publish", "dev/alice/out")
    assert acl.allows("bob", "receive", "cid/c1", client_id="c1") and not acl.allows(
        "bob", "receive", "cid/c2", "c1"
    )
    assert not acl.allows("a+b", "publish", "dev/a+b/out")
    for bad in ("topic sometimes x", "user", "frobnicate x"):
        with pytest.raises(ValueError):
            Acl.parse(bad)


# --- the declared table against the declared routes ------------------------------------------------------
def test_every_launched_process_has_a_broker_user() -> None:
    for name, _, _ in SERVICES:
        assert mqtt_auth.user_for(name) in mqtt_auth.service_users(), name
    with pytest.raises(KeyError):
        mqtt_auth.user_for("nobody")


@pytest.mark.parametrize("needs", access.needs(), ids=lambda n: n.process)
def test_each_service_user_may_do_exactly_what_its_routes_need(needs: access.Needs) -> None:
    acl, user = generated_acl(), mqtt_auth.user_for(needs.process)
    # Everything its routes subscribe to is readable, whole.
    for flt in needs.receives:
        assert acl.allows(user, "subscribe", flt), f"{user} may not subscribe to {flt}: {HINT}"
    # Of every topic some process publishes: it receives exactly those its routes take, and publishes
    # exactly those it declares (the scorer user serves all three scorer processes).
    mates = [n for n in access.needs() if mqtt_auth.user_for(n.process) == user]
    own_filters = [f for n in mates for f in n.receives]
    own_publishes = [p for n in mates for p in n.publishes]
    for topic in access.sample_topics():
        routed = any(topic_matches(f, topic) for f in own_filters)
        assert acl.allows(user, "receive", topic) is routed, (
            f"{user} receive {topic}: routes say {routed}; {HINT}"
        )
        declared = any(n.declares(topic) for n in mates)
        assert acl.allows(user, "publish", topic) is declared, (
            f"{user} publish {topic}: declared {declared}; {HINT}"
        )
    # Whatever it declares it may publish, for any asset; and no rule grants anything beyond: each one
    # is used by a route or a declared publish.
    rules = acl.users[user]
    for p in own_publishes:
        assert any(r.grants("publish") and filter_covers(r.filter, p) for r in rules), f"{user} publish {p}"
    for rule in rules:
        used = rule.grants("receive") and any(filter_covers(rule.filter, f) for f in own_filters)
        used = used or rule.grants("publish") and any(filter_covers(rule.filter, p) for p in own_publishes)
        assert used, f"{user}: rule {rule.line()} is needed by no route or declared publish"


def test_only_the_calibrator_publishes_models_and_config_and_only_health_alarms() -> None:
    acl = generated_acl()
    writers = {
        family: sorted(u for u in acl.users if acl.allows(u, "publish", f"{topics.ROOT}/{family}"))
        for family in (
            "models/m1/legacy",
            "config/m1",
            "alarms/m1",
            "health/m1",
            "state/m1",
            "scores/m1/batch",
        )
    }
    assert writers == {
        "models/m1/legacy": ["calibrator"],
        "config/m1": ["calibrator"],
        "alarms/m1": ["health"],
        "health/m1": ["calibrator", "health"],  # the calibrator clears it on purge
        "state/m1": ["calibrator", "scorer"],  # scorers publish MONITORING
        "scores/m1/batch": ["scorer"],
    }


def test_device_users_publish_only_their_assets_raw_input() -> None:
    acl = generated_acl()
    for topic in access.sample_topics():
        own = topic in access.device_topics(DEVICE_ASSET)
        assert acl.allows(DEVICE_USER, "publish", topic) is own, topic
        assert not acl.allows(DEVICE_USER, "receive", topic), topic
        raw = topic_matches(topics.RAW_SIMPLE_FILTER, topic) or topic_matches(
            topics.RAW_VIBRATION_FILTER, topic
        )
        assert acl.allows(mqtt_auth.DEV_DEVICE, "publish", topic) is raw, topic
        secret = topic.removeprefix(f"{topics.ROOT}/") in mqtt_auth.SECRET_TOPICS
        assert acl.allows(mqtt_auth.OBSERVER, "receive", topic) is not secret, topic
        assert not acl.allows(mqtt_auth.OBSERVER, "publish", topic), topic
    assert not acl.allows(None, "receive", topics.state("m1"))  # no anonymous rules
    assert not acl.allows(None, "publish", topics.raw_simple("m1"))


def replay_reads(topic: str) -> bool:
    """What scripts/replay.py must read to acknowledge a window end to end (and nothing else)."""
    families = ("events/+/reading", "features/+/+", "scores/+/+", "models/+/+")
    return any(topic_matches(f"{topics.ROOT}/{f}", topic) for f in families)


def test_the_replay_user_publishes_raw_input_and_reads_only_what_acknowledges_it() -> None:
    acl, user = generated_acl(), mqtt_auth.REPLAY
    for topic in access.sample_topics():
        raw = "/raw/" in topic
        assert acl.allows(user, "publish", topic) is raw, topic
        assert acl.allows(user, "receive", topic) is replay_reads(topic), topic
    for flt in ("events/+/reading", "features/+/+", "scores/+/+", "models/+/+"):
        assert acl.allows(user, "subscribe", f"{topics.ROOT}/{flt}"), flt
    for flt in ("cmd/#", "#", "events/+/window", "health/+", "state/+", "raw/+/vibration"):
        assert not acl.allows(user, "subscribe", f"{topics.ROOT}/{flt}"), flt
    for topic in (
        topics.command("calibrate"),
        topics.model_announce("m1", "legacy"),
        topics.score("m1", "legacy"),
    ):
        assert not acl.allows(user, "publish", topic), topic
    assert not acl.allows(user, "receive", topics.command("calibrate"))


def test_extra_vibration_filters_are_read_by_ingest_and_written_by_the_dev_device_and_replay() -> None:
    rules = mqtt_auth.acl_rules(dev_device=True, extra_raw_filters=["factory/+/vibration/raw"])
    acl = Acl.parse(mqtt_auth.acl_text(rules))
    assert acl.allows("ingest", "subscribe", "factory/+/vibration/raw")
    assert acl.allows("device", "publish", "factory/m1/vibration/raw")
    assert acl.allows("replay", "publish", "factory/m1/vibration/raw")
    assert not acl.allows("replay", "receive", "factory/m1/vibration/raw")
    assert not acl.allows("gateway", "receive", "factory/m1/vibration/raw")


def test_device_users_cannot_shadow_service_users() -> None:
    with pytest.raises(ValueError, match="clashes"):
        mqtt_auth.acl_rules({"calibrator": ["m1"]})


# --- the generator ---------------------------------------------------------------------------------------
def test_generator_writes_the_files_and_keeps_passwords(tmp_path: Path) -> None:
    out = tmp_path / "mqtt"
    assert mqtt_auth.main(["--out", str(out), "--device", f"{DEVICE_USER}={DEVICE_ASSET},pump_08"]) == 0
    creds = json.loads((out / "credentials.json").read_text())
    assert set(creds) == {*mqtt_auth.service_users(), "observer", "replay", DEVICE_USER}
    assert stat.S_IMODE((out / "credentials.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "passwords" / "ingest").stat().st_mode) == 0o600
    assert (out / "passwords" / "ingest").read_text().strip() == creds["ingest"]
    users = mqtt_acl.parse_password_file((out / "passwd").read_text())
    assert all(mqtt_acl.verify_password(creds[u], users[u]) for u in creds)
    acl = Acl.parse((out / "acl").read_text())
    assert acl.allows(DEVICE_USER, "publish", topics.raw_vibration("pump_08"))
    # A second run keeps every password, adds the new device and remembers the first one.
    assert mqtt_auth.main(["--out", str(out), "--device", "fan_dev=fan_1", "--dev-device"]) == 0
    again = json.loads((out / "credentials.json").read_text())
    assert {u: again[u] for u in creds} == creds and {"fan_dev", "device"} <= set(again)
    assert mqtt_auth.main(["--out", str(out), "--remove-device", DEVICE_USER]) == 0
    assert DEVICE_USER not in json.loads((out / "credentials.json").read_text())


@pytest.mark.parametrize("spec", ["pump", "pump=", "=m1", "pump=../x", "a:b=m1"])
def test_generator_refuses_bad_device_declarations(spec: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        mqtt_auth.main(["--out", str(tmp_path), "--device", spec])


# --- make run (development) ------------------------------------------------------------------------------
def test_development_credentials_are_made_once_and_completed(tmp_path: Path) -> None:
    dev = Settings(data_dir=tmp_path, rotorwatch_env="development")
    creds = mqtt_auth.development_credentials(dev)
    assert list(creds) == mqtt_auth.development_users()
    path = secret_file(dev, MQTT_CREDENTIALS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert mqtt_auth.development_credentials(dev) == creds  # reused on the next start
    stored = json.loads(path.read_text())
    del stored["health"]  # a user added to the table later gets a password, the others keep theirs
    path.write_text(json.dumps(stored))
    again = mqtt_auth.development_credentials(dev)
    assert {u: again[u] for u in stored} == stored and again["health"] != creds["health"]
    passwd, acl_path = mqtt_auth.write_development_broker_files(dev, again)
    users = mqtt_acl.parse_password_file(passwd.read_text())
    assert all(mqtt_acl.verify_password(again[u], users[u]) for u in again)
    acl = Acl.parse(acl_path.read_text())
    assert acl.allows("device", "publish", topics.raw_simple("any_asset"))
    assert acl.allows("replay", "publish", topics.raw_vibration("any_asset"))
    assert acl.allows("replay", "receive", topics.score("any_asset", "autoencoder"))
    with pytest.raises(MissingSecret, match="MQTT_URL"):
        mqtt_auth.development_credentials(Settings(data_dir=tmp_path / "prod"))


def test_the_launcher_gives_each_process_its_own_identity(tmp_path: Path) -> None:
    creds = {u: f"pw-{u}" for u in mqtt_auth.development_users()}
    env = {"A": "1"}
    for name, _, _ in SERVICES:
        e = run.identity_env(env, name, creds)
        user = mqtt_auth.user_for(name)
        assert (e["MQTT_USERNAME"], e["MQTT_PASSWORD"], e["A"]) == (user, f"pw-{user}", "1")
    assert run.identity_env(env, "ingest", None) is env  # external broker: the environment's identity
    # External MQTT_URL with MQTT_CREDENTIALS_FILE: each child its own user from that file.
    f = tmp_path / "credentials.json"
    f.write_text(json.dumps(creds))
    ext = Settings(mqtt_url="mqtt://broker:1883", mqtt_credentials_file=f)
    assert run.mqtt_identities(ext, {"ROTORWATCH_ENV": "development"}) == creds
    assert run.mqtt_identities(Settings(mqtt_url="mqtt://broker"), {"ROTORWATCH_ENV": "development"}) is None


def test_make_run_is_development_unless_said_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROTORWATCH_ENV", raising=False)
    assert run.child_env(Settings(data_dir=tmp_path))["ROTORWATCH_ENV"] == "development"
    monkeypatch.setenv("ROTORWATCH_ENV", "production")
    assert run.child_env(Settings(data_dir=tmp_path))["ROTORWATCH_ENV"] == "production"


def test_a_deny_rule_takes_away_what_a_broader_grant_gives() -> None:
    acl = Acl.parse("user op\ntopic read a/#\ntopic deny a/secret/#\ntopic write a/out\n")
    assert acl.allows("op", "receive", "a/x") and acl.allows("op", "subscribe", "a/#")
    assert not acl.allows("op", "receive", "a/secret/k")
    assert not acl.allows("op", "subscribe", "a/secret/+")  # wholly inside the denied filter
    assert acl.allows("op", "subscribe", "a/+/k")  # allowed; its secret matches are not delivered
    assert acl.allows("op", "publish", "a/out") and not acl.allows("op", "publish", "a/x")
    assert "topic deny a/secret/#" in mqtt_auth.acl_text({"op": [("deny", "a/secret/#")]})
