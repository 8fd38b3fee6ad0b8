"""``python -m services.gateway.admin``: users, passwords, roles, device assets and API keys in the auth
store the gateway reads (the same file, while it runs)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from services.gateway import admin
from services.gateway.auth.roles import Role
from services.gateway.auth.store import AuthError, open_auth_store
from tests.conftest import ROOT


def run(
    data_dir: Path, *argv: str, capsys: pytest.CaptureFixture[str], stdin: str = ""
) -> tuple[int, str, str]:
    sys.stdin = io.StringIO(stdin)
    try:
        code = admin.main(["--data-dir", str(data_dir), *argv])
    finally:
        sys.stdin = sys.__stdin__
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_manages_users_and_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(tmp_path, "user", "create", "alice", "--role", "operator", capsys=capsys)
    assert code == 0 and "alice" in out and "operator" in out
    password = out.split("password (shown once): ")[1].strip()
    code, out, _ = run(
        tmp_path,
        "user",
        "create",
        "pump7",
        "--role",
        "device",
        "--assets",
        "motor_01,motor_02",
        capsys=capsys,
    )
    assert code == 0 and "keys only" in out and "assets=motor_01,motor_02" in out
    code, out, _ = run(tmp_path, "key", "create", "pump7", "--label", "esp32", capsys=capsys)
    key = out.strip().splitlines()[-1]
    key_id = out.split()[2]
    assert code == 0 and key.startswith("rw_")

    store = open_auth_store(tmp_path)
    try:
        ident = store.identify_key(key)
        assert (ident.user, ident.role, ident.assets) == ("pump7", Role.device, ("motor_01", "motor_02"))
        assert store.login("alice", password)[1].role is Role.operator
    finally:
        store.close()

    code, out, _ = run(tmp_path, "user", "list", capsys=capsys)
    assert [line.split()[:3] for line in out.splitlines()] == [
        ["alice", "operator", "enabled"],
        ["pump7", "device", "enabled"],
    ]
    assert run(tmp_path, "user", "set", "alice", "--role", "admin", capsys=capsys)[0] == 0
    assert (
        run(
            tmp_path, "user", "passwd", "alice", "--password-stdin", capsys=capsys, stdin="new password 99\n"
        )[0]
        == 0
    )
    code, out, _ = run(tmp_path, "key", "list", "--user", "pump7", capsys=capsys)
    assert out.split()[:3] == [key_id, "pump7", "enabled"]
    assert run(tmp_path, "key", "disable", key_id, capsys=capsys)[0] == 0
    assert run(tmp_path, "user", "set", "pump7", "--disable", capsys=capsys)[0] == 0

    store = open_auth_store(tmp_path)
    try:
        with pytest.raises(AuthError, match="disabled"):
            store.identify_key(key)
        assert store.user("alice").role is Role.admin
        assert store.login("alice", "new password 99")[1].user == "alice"
    finally:
        store.close()

    # Refusals: exit 1 with the reason.
    assert run(tmp_path, "user", "create", "alice", "--role", "viewer", capsys=capsys)[1:] == (
        "",
        "error: user 'alice' exists\n",
    )
    code, _, err = run(tmp_path, "user", "set", "alice", "--disable", capsys=capsys)
    assert code == 1 and "last enabled admin" in err
    code, _, err = run(tmp_path, "user", "create", "x", "--role", "device", "--assets", "bad$", capsys=capsys)
    assert code == 1 and "invalid asset id" in err
    assert run(tmp_path, "key", "disable", "deadbeef", capsys=capsys)[0] == 1


def test_cli_runs_as_a_module(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "services.gateway.admin", "--data-dir", str(tmp_path), "user", "list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (r.returncode, r.stdout.strip()) == (0, "(no users)"), r.stderr
