"""Asset configurations on disk: ``DATA_DIR/configs/<asset_id>.json``, one JSON :class:`AssetConfig` each.

The calibrator owns asset configuration: these files are the durable copy, the retained
``config/<asset>`` message is the bus copy, restored from the files once per broker connection.
Plain blocking file I/O; async callers run these functions with ``asyncio.to_thread``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pydantic import ValidationError

from shared import topics
from shared.messages import AssetConfig

CONFIG_DIRNAME = "configs"


def config_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / CONFIG_DIRNAME


def config_path(directory: str | Path, asset_id: str) -> Path:
    """``<directory>/<asset_id>.json``; ValueError for an asset id that is not a safe file name."""
    if not topics.valid_asset_id(asset_id) or asset_id in (".", ".."):
        raise ValueError(f"invalid asset id {asset_id!r}: must match {topics.ASSET_ID_PATTERN}")
    return Path(directory) / f"{asset_id}.json"


def save_config(directory: str | Path, cfg: AssetConfig) -> Path:
    """Write ``cfg`` atomically (temporary file, fsync, rename) and return its path."""
    path = config_path(directory, cfg.asset_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{cfg.asset_id}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(cfg.model_dump_json(indent=2).encode())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_config(directory: str | Path, asset_id: str) -> AssetConfig | None:
    """The persisted config of one asset, None when there is none; ValueError for a corrupt file."""
    path = config_path(directory, asset_id)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        cfg = AssetConfig.model_validate_json(text)
    except ValidationError as exc:
        raise ValueError(f"{path}: not a valid asset config: {exc.errors()[0]['msg']}") from None
    if cfg.asset_id != asset_id:
        raise ValueError(f"{path}: holds the config of asset {cfg.asset_id!r}")
    return cfg


def load_all(directory: str | Path) -> tuple[list[AssetConfig], list[str]]:
    """Every valid persisted config (sorted by asset id) and one error line per file that is not."""
    root = Path(directory)
    if not root.is_dir():
        return [], []
    found: list[AssetConfig] = []
    errors: list[str] = []
    for path in sorted(root.glob("*.json")):
        try:
            cfg = load_config(root, path.stem)
        except (ValueError, OSError) as exc:
            errors.append(str(exc))
            continue
        if cfg is not None:
            found.append(cfg)
    return found, errors


def list_assets(directory: str | Path) -> list[str]:
    """Asset ids with a config file (valid or not), sorted."""
    root = Path(directory)
    if not root.is_dir():
        return []
    return sorted(p.stem for p in root.glob("*.json") if topics.valid_asset_id(p.stem))


def delete_config(directory: str | Path, asset_id: str) -> bool:
    """Remove an asset's config file; ``True`` if there was one."""
    path = config_path(directory, asset_id)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
