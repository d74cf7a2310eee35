"""``hotline-cti deploy``: a cut-over onto a real Asterisk 22, a refused broken file, a roll-back, a dry run."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hotline_cti.config.catalogue import known_prompt_ids, load_catalogue
from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.deploy import RELOADS, Asterisk, DeployError, Plan, deploy, expected
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all, write_all
from simulators.asterisk import Ami, AsteriskInstance, ControllerThread, Event, silent_wav, start_asterisk

ROOT = Path(__file__).resolve().parent.parent
GUANGXI = ROOT / "merger_config" / "guangxi.yaml"
MERGED_12300 = '  - {number: "12300", name: 全国电信用户申诉渠道咨询电话, unit: 自治区通信管理局, mode: merge, cutover: 2021-08-31}'
GUIDANCE_12300 = '  - {number: "12300", name: 全国电信用户申诉渠道咨询电话, unit: 自治区通信管理局, mode: guidance, channel: 登录工业和信息化部网站申诉}'
NEW_12399 = '  - {number: "12399", name: 测试热线, unit: 测试单位, mode: merge, cutover: 2021-08-31}'
HARNESS = "\n[rig-caller]\nexten => listen,1,Playtones(0)\n same => n,Wait(20)\n same => n,Hangup()\n"
IN_WINDOW = dt.datetime(2021, 9, 15, 10, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def guidance_file(tmp: Path) -> Path:
    """Guangxi with 12300 turned into a guidance line (the controller's change) and a new line 12399 (Asterisk's)."""
    text = GUANGXI.read_text(encoding="utf-8")
    assert MERGED_12300 in text
    path = tmp / "new.yaml"
    path.write_text(text.replace(MERGED_12300, f"{GUIDANCE_12300}\n{NEW_12399}"), encoding="utf-8")
    return path


def snapshot(*dirs: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for d in dirs for p in sorted(d.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- without Asterisk


class FakeAsterisk:
    """Records reloads; shows what the rendered files define unless told to lose a queue."""

    def __init__(self, directory: Path, lose_queue: bool = False) -> None:
        self.directory = directory
        self.lose_queue = lose_queue
        self.reloads: list[str] = []

    async def ping(self) -> None:
        return None

    async def reload(self, module: str) -> None:
        self.reloads.append(module)

    def _files(self) -> dict[str, str]:
        return {n: (self.directory / n).read_text(encoding="utf-8") for n in ("extensions.conf", "queues.conf")}

    async def extensions(self, context: str) -> set[str]:
        return set(expected(self._files()).extensions)

    async def queues(self) -> set[str]:
        queues = set(expected(self._files()).queues)
        return queues - {"gx-general"} if self.lose_queue else queues


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    """An in-service merger file and the Asterisk directory rendered from it."""
    in_service = tmp_path / "etc" / "merger.yaml"
    in_service.parent.mkdir()
    shutil.copyfile(GUANGXI, in_service)
    asterisk_dir = tmp_path / "asterisk"
    write_all(render_all(load_config(in_service).model, RenderOptions()), asterisk_dir)
    return in_service, asterisk_dir


def run_deploy(plan: Plan, asterisk: Asterisk | None) -> tuple[int, str]:
    out = io.StringIO()
    code = asyncio.run(deploy(plan, asterisk, out))
    return code, out.getvalue()


def test_dry_run_shows_the_diff_and_changes_nothing(site: tuple[Path, Path], tmp_path: Path) -> None:
    in_service, asterisk_dir = site
    before = snapshot(in_service.parent, asterisk_dir)
    code, out = run_deploy(Plan(guidance_file(tmp_path), in_service, asterisk_dir, RenderOptions(), dry_run=True), None)
    assert code == 0, out
    assert "changed: 12300" in out and "mode: merge -> guidance" in out and "added:   12399" in out
    assert (
        f"{asterisk_dir / 'extensions.conf'}: changes" in out and f"{asterisk_dir / 'features.conf'}: unchanged" in out
    )
    assert "dry run: would write" in out
    assert snapshot(in_service.parent, asterisk_dir) == before


def test_a_broken_file_changes_nothing(site: tuple[Path, Path], tmp_path: Path) -> None:
    in_service, asterisk_dir = site
    broken = tmp_path / "broken.yaml"
    broken.write_text(GUANGXI.read_text(encoding="utf-8").replace("mode: merge, cutover: 2021-08-31", "mode: merged"))
    fake = FakeAsterisk(asterisk_dir)
    before = snapshot(in_service.parent, asterisk_dir)
    code, out = run_deploy(Plan(broken, in_service, asterisk_dir, RenderOptions()), fake)
    assert code == 1 and "nothing changed" in out
    assert "error: new file:" in out
    assert fake.reloads == [] and snapshot(in_service.parent, asterisk_dir) == before


def test_a_failed_verification_rolls_everything_back(site: tuple[Path, Path], tmp_path: Path) -> None:
    in_service, asterisk_dir = site
    fake = FakeAsterisk(asterisk_dir, lose_queue=True)
    before = snapshot(in_service.parent, asterisk_dir)
    code, out = run_deploy(Plan(guidance_file(tmp_path), in_service, asterisk_dir, RenderOptions()), fake)
    assert code == 1, out
    assert "verify failed: Asterisk lacks 1 queue(s): gx-general" in out and "rolled back" in out
    assert snapshot(in_service.parent, asterisk_dir) == before  # byte for byte, the merger file too
    # reloaded after writing, and again after restoring
    changed = [m for n, m in RELOADS if n == "extensions.conf"]
    assert fake.reloads.count(changed[0]) == 2


def test_a_deploy_writes_reloads_verifies_and_installs(site: tuple[Path, Path], tmp_path: Path) -> None:
    in_service, asterisk_dir = site
    new = guidance_file(tmp_path)
    fake = FakeAsterisk(asterisk_dir)
    code, out = run_deploy(Plan(new, in_service, asterisk_dir, RenderOptions()), fake)
    assert code == 0, out
    assert in_service.read_bytes() == new.read_bytes()
    assert (asterisk_dir / "extensions.conf").read_text(encoding="utf-8") == render_all(
        load_config(new).model, RenderOptions()
    )["extensions.conf"]
    assert fake.reloads == ["pbx_config.so"]  # only extensions.conf changed
    assert not list(asterisk_dir.glob(".*.tmp"))  # no temp file left behind


def test_an_unreachable_manager_changes_nothing(site: tuple[Path, Path], tmp_path: Path) -> None:
    class Down(FakeAsterisk):
        async def ping(self) -> None:
            raise DeployError("connection refused")

    in_service, asterisk_dir = site
    before = snapshot(in_service.parent, asterisk_dir)
    code, out = run_deploy(Plan(guidance_file(tmp_path), in_service, asterisk_dir, RenderOptions()), Down(asterisk_dir))
    assert code == 1 and "does not answer" in out and "nothing changed" in out
    assert snapshot(in_service.parent, asterisk_dir) == before


# ---------------------------------------------------------------- on the real Asterisk


@dataclass
class Site:
    pbx: AsteriskInstance
    ami: Ami
    controller: ControllerThread
    in_service: Path
    asterisk_dir: Path

    def call(self, number: str) -> list[Event]:
        """Originate a call to ``number``; its events once it joined a queue or hung up."""
        leg = f"dep{len(self.ami.events)}x{id(self) % 1000}"
        self.ami.originate(
            f"Local/{number}@hotline-inbound",
            channel_id=leg,
            other_channel_id=f"{leg}-2",
            context="rig-caller",
            exten="listen",
        )
        self.ami.wait_for(
            lambda e: e.get("Uniqueid") == f"{leg}-2" and e.get("Event") in ("QueueCallerJoin", "Hangup"), 20
        )
        events = [e for e in self.ami.events if e.get("Uniqueid") == f"{leg}-2"]
        self.pbx.cli("channel request hangup all")
        return events


@pytest.fixture(scope="module")
def real_site(asterisk_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("deploy-site")
    in_service = tmp / "merger.yaml"
    shutil.copyfile(GUANGXI, in_service)
    cfg = load_config(in_service).model
    table = compile_config(cfg)
    controller = ControllerThread(in_service, IN_WINDOW.astimezone(table.timezone))
    port = controller.listen()
    out = tmp / "rendered"
    write_all(render_all(cfg, RenderOptions(controllers=(f"127.0.0.1:{port}",))), out)
    new_cfg = load_config(guidance_file(tmp)).model
    prompts = {*known_prompt_ids(load_catalogue(), cfg), *known_prompt_ids(load_catalogue(), new_cfg)}
    sounds = {p: silent_wav(0.05) for p in prompts}
    pbx = start_asterisk(asterisk_root, name="deploy", generated_dir=out, extra_extensions=HARNESS, sounds=sounds)
    ami = pbx.ami()
    try:
        yield Site(pbx, ami, controller, in_service, pbx.dir / "generated")
    finally:
        ami.close()
        pbx.stop()
        controller.shutdown()


def real_deploy(site: Site, new: Path) -> tuple[int, str]:
    from hotline_cti.adapters.ami.client import AmiClient, AmiSettings
    from hotline_cti.deploy import AmiAsterisk

    options = RenderOptions(controllers=(f"127.0.0.1:{site.controller.port}",))
    plan = Plan(new, site.in_service, site.asterisk_dir, options, at=IN_WINDOW)

    async def go() -> tuple[int, str]:
        settings = AmiSettings(
            host="127.0.0.1", port=site.pbx.ami_port, username=site.pbx.ami_user, secret=site.pbx.ami_secret
        )
        client = AmiClient(settings)
        await client.connect()
        try:
            out = io.StringIO()
            return await deploy(plan, AmiAsterisk(client), out), out.getvalue()
        finally:
            await client.close()

    result = asyncio.run(go())
    # serve's services poll the file every second; the in-process controller is asked once
    asyncio.run_coroutine_threadsafe(_reload(site), site.controller.loop).result(10)
    return result


async def _reload(site: Site) -> None:
    site.controller.server.holder.reload_if_changed()


def test_on_a_real_asterisk_a_broken_file_changes_nothing_and_a_mode_change_changes_the_call(
    real_site: Site, tmp_path: Path
) -> None:
    site = real_site
    first = site.call("12300")  # merged, inside its window: the transition prompt, then a 12345 queue
    assert [e["Event"] for e in first if e["Event"] == "QueueCallerJoin"] == ["QueueCallerJoin"]

    broken = tmp_path / "broken.yaml"
    broken.write_text(GUANGXI.read_text(encoding="utf-8").replace('number: "12300"', "number: 12300x"))
    before = snapshot(site.asterisk_dir) | {str(site.in_service): site.in_service.read_bytes()}
    assert "'12399' => " not in site.pbx.cli("dialplan show 12399@hotline-inbound")  # not a line yet
    code, out = real_deploy(site, broken)
    assert code == 1 and "nothing changed" in out, out
    assert snapshot(site.asterisk_dir) | {str(site.in_service): site.in_service.read_bytes()} == before
    again = site.call("12300")
    assert any(e["Event"] == "QueueCallerJoin" for e in again)

    code, out = real_deploy(site, guidance_file(tmp_path))
    assert code == 0, out
    assert "reloaded pbx_config.so" in out and "verified:" in out and "deploy: done" in out
    after = site.call("12300")  # now guidance: its prompt, then released; no queue
    assert not any(e["Event"] == "QueueCallerJoin" for e in after)
    route = [e for e in after if e["Event"] == "UserEvent" and e.get("UserEvent") == "HotlineRoute"]
    assert [e["Action"] for e in route] == ["guidance"]
    assert "'12399' => " in site.pbx.cli("dialplan show 12399@hotline-inbound")
    added = site.call("12399")  # the new line's extension, reloaded into Asterisk: its window, then a queue
    assert any(e["Event"] == "QueueCallerJoin" for e in added)
    assert any(
        e["Event"] == "Newexten" and e.get("Application") == "Playback" and "guidance-12300" in e.get("AppData", "")
        for e in after
    )
