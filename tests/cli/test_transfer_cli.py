"""``hotline-cti transfer`` as a real process against the simulated AMI server: actions, audit rows, exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hotline_cti.core.model import TransferMode
from hotline_cti.storage.store import Store
from simulators.ami_server import AmiServer
from tests.adapters.ami.test_transfer import AGENT, CALLER, SECRET


@pytest.fixture
async def ami() -> AsyncIterator[AmiServer]:
    async with AmiServer(secret=SECRET) as srv:
        srv.add_channel(CALLER, caller_num="13812345678")
        srv.add_channel(AGENT, caller_num="1001")
        srv.bridge(CALLER, AGENT)
        yield srv


async def cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hotline_cti.cli.main",
        "transfer",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def ami_env(server: AmiServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOTLINE_AMI_", "DATABASE_URL"))}
    env.update(
        HOTLINE_AMI_HOST="127.0.0.1",
        HOTLINE_AMI_PORT=str(server.port),
        HOTLINE_AMI_USER="hotline",
        HOTLINE_AMI_SECRET=SECRET,
    )
    return env


async def test_transfer_command_acts_audits_and_exits_by_result(
    ami: AmiServer, small_config_path: Path, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"
    common = ("--config", str(small_config_path), "--database", url)
    env = ami_env(ami)

    code, out, err = await cli(AGENT, "--to", "999", *common, env=env)
    assert code == 3, err
    assert "unknown target '999'" in out

    code, out, _ = await cli(AGENT, "--to", "110", "--mode", "attended", *common, env=env)
    assert code == 3 and "mode attended not allowed for 110" in out

    code, out, _ = await cli("PJSIP/nobody-00000001", "--to", "110", *common, env=env)
    assert code == 3 and "unknown channel" in out

    code, out, err = await cli(AGENT, "--to", "tax", "--by", "agent:1001", "--json", *common, env=env)
    assert code == 0, out + err
    row = json.loads(out)
    assert (row["result"], row["target"], row["requested_by"]) == ("ok", "tax", "agent:1001")
    (action,) = ami.actions_named("BlindTransfer")
    assert (action.get("Channel"), action.get("Exten"), action.get("Context")) == (AGENT, "8001", "hotline-onekey")

    store = await Store.open(url)
    try:
        audit = await store.transfers_between()
        events = await store.pending_events()
    finally:
        await store.close()
    assert [(t.target, t.mode, t.result) for t in audit] == [
        ("999", TransferMode.BLIND, "refused"),
        ("110", TransferMode.ATTENDED, "refused"),
        ("110", TransferMode.BLIND, "refused"),
        ("tax", TransferMode.BLIND, "ok"),
    ]
    assert audit[-1].call_id == ami.channels[CALLER].uniqueid
    assert [topic for _, topic, _ in events] == ["hotline/gx/transfers"] * 4
    assert json.loads(events[-1][2])["data"]["transfer_id"] == audit[-1].transfer_id


async def test_transfer_command_usage_errors(ami: AmiServer, small_config_path: Path, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"
    env = {k: v for k, v in ami_env(ami).items() if k != "HOTLINE_AMI_SECRET"}
    code, _, err = await cli(AGENT, "--to", "110", "--config", str(small_config_path), "--database", url, env=env)
    assert code == 2 and "HOTLINE_AMI_SECRET is not set" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("region: {id: gx}\n", encoding="utf-8")
    code, _, err = await cli(AGENT, "--to", "110", "--config", str(bad), "--database", url, env=ami_env(ami))
    assert code == 1 and "bad.yaml" in err
    code, _, err = await cli(AGENT, "--to", "110", "--mode", "sideways", "--config", str(bad), env=ami_env(ami))
    assert code == 2 and "invalid choice: 'sideways'" in err
    assert ami.actions_named("BlindTransfer") == []


async def test_transfer_command_with_an_unusable_database_names_the_flag_and_acts_not(
    ami: AmiServer, small_config_path: Path, tmp_path: Path
) -> None:
    """No traceback and no action when the audit database cannot be opened: the transfer must be audited."""
    for url in ("nosuchdb://x", f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'dir' / 'audit.db'}"):
        code, out, err = await cli(
            AGENT, "--to", "110", "--config", str(small_config_path), "--database", url, env=ami_env(ami)
        )
        assert code == 1 and err.startswith("error: --database: "), (url, out, err)
        assert "Traceback" not in err
    assert ami.actions_named("BlindTransfer") == []
