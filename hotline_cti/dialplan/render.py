"""Render every Asterisk file of a merger config and write them to a directory."""

from __future__ import annotations

from pathlib import Path

from hotline_cti.config.schema import MergerConfig
from hotline_cti.dialplan.agent_codes import render_agent_codes
from hotline_cti.dialplan.callback import render_callback
from hotline_cti.dialplan.extensions import render_extensions
from hotline_cti.dialplan.features import render_confbridge, render_features
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.queues import render_queuerules, render_queues

FILES = ("extensions.conf", "queues.conf", "features.conf", "confbridge.conf", "queuerules.conf")


def render_all(cfg: MergerConfig, opts: RenderOptions | None = None) -> dict[str, str]:
    """File name -> text for every generated file."""
    opts = opts or RenderOptions()
    return {
        "extensions.conf": render_extensions(cfg, opts) + render_callback(cfg) + "\n" + render_agent_codes(cfg),
        "queues.conf": render_queues(cfg),
        "queuerules.conf": render_queuerules(cfg),
        "features.conf": render_features(cfg),
        "confbridge.conf": render_confbridge(cfg),
    }


def write_all(files: dict[str, str], out_dir: Path) -> list[Path]:
    """Write ``files`` under ``out_dir`` (created if missing); return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in sorted(files):
        path = out_dir / name
        path.write_text(files[name], encoding="utf-8")
        written.append(path)
    return written
