"""``/models``: reload (re-announce) the current models of an asset from the registry on disk."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.gateway.auth.guard import Admin
from services.gateway.commands import COMMAND_RESPONSES, CommandResult, ReloadData, asset_command
from services.gateway.deps import ContextDep
from shared.messages import ReloadReply
from shared.topics import ASSET_ID_PATTERN

router = APIRouter(prefix="/models", tags=["models"])


@router.post("/reload", response_model=CommandResult[ReloadData], responses=COMMAND_RESPONSES)
async def reload_models(
    ctx: ContextDep,
    who: Admin,
    asset_id: Annotated[
        str | None, Query(pattern=ASSET_ID_PATTERN, description="Only this asset (default: every asset)")
    ] = None,
) -> CommandResult[ReloadData]:
    """Ask the calibrator to re-read the latest model version(s) from disk and re-announce them
    (``cmd/reload``), e.g. after editing a manifest's threshold by hand."""
    return await asset_command(ctx, "reload", asset_id, ReloadReply, ReloadData)
