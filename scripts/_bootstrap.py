"""Let ``python scripts/<name>.py`` run with any Python: when this interpreter lacks the repository's
packages and ``.venv`` exists (``make run`` / ``make venv`` create it), run the script again with
``.venv``'s interpreter, same arguments; otherwise stop with what to do. Standard library only."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
#: Imported by the scripts (directly or through ``shared``).
NEEDED = ("httpx", "numpy", "aiomqtt", "pydantic", "pydantic_settings")


def ensure(needed: tuple[str, ...] = NEEDED) -> None:
    """Return when ``needed`` imports here (the repository root then on ``sys.path``); else re-execute
    with ``.venv/bin/python``, or exit 2 with the missing packages and the command that installs them."""
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if not missing:
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        return
    venv_python = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    in_venv = Path(sys.prefix).resolve() == VENV.resolve()
    if venv_python.exists() and not in_venv:
        os.execv(str(venv_python), [str(venv_python), *sys.argv])
    sys.stderr.write(
        f"[FAIL] {sys.executable} lacks {', '.join(missing)} and {VENV} "
        f"{'lacks them too' if in_venv else 'does not exist'}: run `make venv` (or `make run`) in {ROOT} "
        "first, or `pip install -r requirements.txt`\n"
    )
    raise SystemExit(2)
