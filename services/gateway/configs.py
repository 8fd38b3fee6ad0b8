"""Asset configurations persisted by the gateway as JSON files ``DATA_DIR/configs/<asset_id>.json``.

The file is the gateway's durable copy; the bus copy is the retained ``config/<asset>`` message, which
:func:`republish_task` restores on every (re)connection so a fresh broker learns every config again.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import structlog
from pydantic import ValidationError

from shared import topics
from shared.bus import Bus, Task
from shared.messages import AssetConfig

log = structlog.get_logger()

CONFIG_DIRNAME = "configs"


def config_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / CONFIG_DIRNAME


def config_path(directory: str | Path, asset_id: str) -> Path:
    """``<directory>/<asset_id>.json``; ValueError for an asset id that is not a safe file name."""
    if not topics.valid_asset_id(asset_id):
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
    configs, errors = [], []
    for path in sorted(root.glob("*.json")):
        try:
            cfg = load_config(root, path.stem)
        except (ValueError, OSError) as exc:
            errors.append(str(exc))
            continue
        if cfg is not None:
            configs.append(cfg)
    return configs, errors


def republish_task(directory: str | Path) -> Task:
    """A :func:`shared.bus.serve` task: publish every persisted config retained (QoS 1)."""

    async def republish(bus: Bus) -> None:
        configs, errors = await asyncio.to_thread(load_all, directory)
        for err in errors:
            log.warning("config_unreadable", error=err)
        for cfg in configs:
            await bus.publish(topics.asset_config(cfg.asset_id), cfg, qos=1, retain=True)
        log.info("configs_republished", count=len(configs), unreadable=len(errors))

    return republish
