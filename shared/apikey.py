"""Where scripts and tests find the gateway's API key (``Authorization: Bearer <key>``).

:func:`resolve_api_key` takes, in order: the key given explicitly (``--api-key``), the
``ROTORWATCH_API_KEY`` environment variable, then the first admin's key the gateway wrote on its first
start (``DATA_DIR/admin.key``, mode 0600). So ``make run`` followed by the README's script commands
works without configuration, and a deployment passes its own key.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "ROTORWATCH_API_KEY"
KEY_FILE = "admin.key"


def resolve_api_key(explicit: str | None, data_dir: Path) -> str | None:
    """The API key to use: ``explicit`` > ``$ROTORWATCH_API_KEY`` > ``data_dir/admin.key``; None
    when there is none (the request goes out without credentials and the gateway answers 401)."""
    for value in (explicit, os.environ.get(ENV_VAR)):
        if value and value.strip():
            return value.strip()
    try:
        text = (data_dir / KEY_FILE).read_text().strip()
    except OSError:
        return None
    return text or None


def auth_headers(api_key: str | None) -> dict[str, str]:
    """``{"Authorization": "Bearer <key>"}``, or ``{}`` without a key."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def script_api_key(explicit: str | None) -> str | None:
    """:func:`resolve_api_key` with this process's DATA_DIR (the scripts' ``--api-key`` default)."""
    from shared.settings import Settings

    return resolve_api_key(explicit, Settings().data_dir)


#: ``--api-key`` help text shared by the scripts.
API_KEY_HELP = f"gateway API key (default: ${ENV_VAR}, else $DATA_DIR/{KEY_FILE} written by the gateway)"
