"""``hotline-cti deploy``: a cut-over onto a real Asterisk 22, a refused broken file, a roll-back, a dry run."""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import io
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hotline_cti.config.catalogue import known_prompt_ids, load_catalogue
from hotline_cti.config.compile import compile_config
from hotline_cti.config.loader import load_config
from hotline_cti.deploy import RELOADS, Asterisk, DeployError, Plan, deploy, expected, feature_lines, shown_features
from hotline_cti.deploy_lock import deploy_lock, lock_path
from hotline_cti.dialplan.confparse import parse_sections
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all, write_all
from simulators.asterisk import Ami, AsteriskInstance, ControllerThread, Event, silent_wav, start_asterisk
from tests.paths import REPO

ROOT = REPO
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

    async def features(self) -> set[str]:
        return set(feature_lines(parse_sections((self.directory / "features.conf").read_text(encoding="utf-8"))))


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
    # Wait for the new table: reload_if_changed() on the loop only starts the load, and a call placed
    # before it lands was routed by the old file (a flake under load).
    assert await site.controller.server.holder.reload_async()


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


# ---------------------------------------------------------------- features and the deploy lock

FOREST_FIRE = (
    '  - {number: "12119", name: 森林火警电话, unit: 林业部门, mode: transfer, transfer_modes: [blind, threeway]}'
)
FOREST_EMERGENCY = 'emergency_numbers: ["110", "119", "120", "122", "12122", "12119"]'

FEATURES_SHOW = """Builtin Feature           Default Current
---------------           ------- -------
Pickup                    *8      *8
Blind Transfer            #       #1
Attended Transfer                 *2
Disconnect Call           *       *0
Park Call
One Touch MixMonitor

Dynamic Feature           Default Current
---------------           ------- -------
hotline-b110              no def  *1110
hotline-t110              no def  *3110

Feature Groups:
---------------
===> Group: hotline_xfer
===> --> hotline-b110 (*1110)
===> --> hotline-t110 (*3110)
"""


def with_forest_fire(source: Path, tmp: Path) -> Path:
    """``source`` plus a new emergency line 12119: new one-key features *112119 and *312119."""
    text = source.read_text(encoding="utf-8")
    path = tmp / "forest.yaml"
    path.write_text(text.rstrip("\n") + "\n" + FOREST_FIRE + "\n" + FOREST_EMERGENCY + "\n", encoding="utf-8")
    return path


class FeaturesAsterisk(FakeAsterisk):
    """Shows the features of features.conf, less the ones told to go missing."""

    def __init__(self, directory: Path, lose: frozenset[str] = frozenset()) -> None:
        super().__init__(directory)
        self.lose = lose

    async def features(self) -> set[str]:
        text = (self.directory / "features.conf").read_text(encoding="utf-8")
        return set(feature_lines(parse_sections(text))) - self.lose


def test_features_show_is_read_as_features_conf_words_it() -> None:
    conf = "[featuremap]\nblindxfer=#1\natxfer=*2\ndisconnect=*0\n[applicationmap]\n"
    conf += "hotline-b110 => *1110,self/callee,Gosub(hotline-xfer,b110,1)\nhotline-t110 => *3110,self/callee,Gosub(x)\n"
    conf += "[hotline_xfer]\nhotline-b110 => *1110\nhotline-t110 => *3110\n"
    want = feature_lines(parse_sections(conf))
    assert "applicationmap hotline-b110 *1110" in want and "featuremap Blind Transfer #1" in want
    assert "group hotline_xfer hotline-t110 *3110" in want and len(want) == 7
    assert shown_features(FEATURES_SHOW.splitlines()) >= want
    assert "featuremap Park Call" not in " ".join(shown_features(FEATURES_SHOW.splitlines()))  # no current: off


def test_a_feature_asterisk_does_not_show_rolls_everything_back(site: tuple[Path, Path], tmp_path: Path) -> None:
    in_service, asterisk_dir = site
    new = with_forest_fire(in_service, tmp_path)
    fake = FeaturesAsterisk(asterisk_dir, lose=frozenset({"applicationmap hotline-b12119 *112119"}))
    before = snapshot(in_service.parent, asterisk_dir)
    code, out = run_deploy(Plan(new, in_service, asterisk_dir, RenderOptions()), fake)
    assert code == 1, out
    assert "verify failed: features show lacks 1 feature(s): applicationmap hotline-b12119 *112119" in out
    assert "rolled back" in out and "features" in fake.reloads
    assert snapshot(in_service.parent, asterisk_dir) == before


def test_a_second_deploy_is_refused_naming_the_first(site: tuple[Path, Path], tmp_path: Path) -> None:
    in_service, asterisk_dir = site
    fake = FeaturesAsterisk(asterisk_dir)
    with deploy_lock(asterisk_dir, "/srv/first.yaml", io.StringIO()):
        before = snapshot(in_service.parent, asterisk_dir)
        code, out = run_deploy(Plan(guidance_file(tmp_path), in_service, asterisk_dir, RenderOptions()), fake)
        assert code == 1, out
        assert f"another deploy holds {lock_path(asterisk_dir)} (pid={os.getpid()} " in out
        assert "config=/srv/first.yaml" in out and "nothing changed" in out
        assert fake.reloads == [] and snapshot(in_service.parent, asterisk_dir) == before
    code, out = run_deploy(Plan(guidance_file(tmp_path), in_service, asterisk_dir, RenderOptions()), fake)
    assert code == 0, out  # released: the next one goes through, and takes over nothing
    assert "taking over" not in out and not lock_path(asterisk_dir).exists()  # a clean release leaves no file


def test_a_deploy_asked_to_wait_goes_through_when_the_first_ends(site: tuple[Path, Path], tmp_path: Path) -> None:
    in_service, asterisk_dir = site
    held, release = threading.Event(), threading.Event()

    def first() -> None:
        with deploy_lock(asterisk_dir, "first.yaml", io.StringIO()):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=first)
    thread.start()
    assert held.wait(10)
    threading.Timer(1.0, release.set).start()
    try:
        plan = Plan(guidance_file(tmp_path), in_service, asterisk_dir, RenderOptions(), lock_wait=60)
        code, out = run_deploy(plan, FeaturesAsterisk(asterisk_dir))
    finally:
        release.set()
        thread.join(10)
    assert code == 0 and "deploy: done" in out, out


HOLD_LOCK = """
import io, sys, time
from pathlib import Path
from hotline_cti.deploy_lock import deploy_lock
with deploy_lock(Path(sys.argv[1]), "crashed.yaml", io.StringIO()):
    print("held", flush=True)
    time.sleep(120)
"""


def crashed_holder(asterisk_dir: Path) -> int:
    """A deploy that took the lock and was killed (-9) in the middle: its holder line stays in the file."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(asterisk_dir)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    proc.kill()
    proc.wait(10)
    assert f"pid={proc.pid} " in lock_path(asterisk_dir).read_text()
    return proc.pid


def test_a_lock_left_by_a_crashed_deploy_is_taken_over(site: tuple[Path, Path], tmp_path: Path) -> None:
    in_service, asterisk_dir = site
    pid = crashed_holder(asterisk_dir)
    code, out = run_deploy(
        Plan(guidance_file(tmp_path), in_service, asterisk_dir, RenderOptions()), FeaturesAsterisk(asterisk_dir)
    )
    assert code == 0, out
    assert f"taking over the lock {lock_path(asterisk_dir)} left by a deploy that ended without releasing it" in out
    assert f"pid={pid} " in out and "no longer running" in out


def test_the_lock_is_not_followed_through_a_symlink(site: tuple[Path, Path], tmp_path: Path) -> None:
    in_service, asterisk_dir = site
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    lock_path(asterisk_dir).symlink_to(victim)
    with pytest.raises(OSError):
        run_deploy(Plan(guidance_file(tmp_path), in_service, asterisk_dir, RenderOptions()), FakeAsterisk(asterisk_dir))
    assert victim.read_text() == "keep me\n"


def test_two_deploy_commands_at_once_the_second_refuses(site: tuple[Path, Path], tmp_path: Path) -> None:
    in_service, asterisk_dir = site
    env = {**os.environ, "HOTLINE_AMI_USER": "u", "HOTLINE_AMI_SECRET": "s"}
    cmd = [
        sys.executable,
        "-m",
        "hotline_cti.cli.main",
        "deploy",
        str(guidance_file(tmp_path)),
        "--in-service",
        str(in_service),
        "--asterisk-dir",
        str(asterisk_dir),
        "--ami",
        "127.0.0.1:9",
    ]
    with deploy_lock(asterisk_dir, "other.yaml", io.StringIO()):
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode == 1 and "another deploy holds" in run.stdout and "config=other.yaml" in run.stdout
    bad = subprocess.run([*cmd, "--wait", "-1"], capture_output=True, text=True, timeout=60, env=env)
    assert bad.returncode == 2 and "argument --wait" in bad.stderr


def test_on_a_real_asterisk_features_are_verified_and_deploys_take_turns(real_site: Site, tmp_path: Path) -> None:
    site = real_site
    new = with_forest_fire(site.in_service, tmp_path)  # what is in service, plus 12119's one-key features
    options = RenderOptions(controllers=(f"127.0.0.1:{site.controller.port}",))
    want = expected(render_all(load_config(new).model, options))
    assert "applicationmap hotline-b12119 *112119" in want.features and "group hotline_xfer hotline-t12119 *312119" in (
        want.features
    )
    # Another deploy is running: refused, naming it, before anything is written or reloaded.
    with deploy_lock(site.asterisk_dir, "/srv/other.yaml", io.StringIO()):
        before = snapshot(site.asterisk_dir) | {str(site.in_service): site.in_service.read_bytes()}
        code, out = real_deploy(site, new)
        assert code == 1 and "another deploy holds" in out and "config=/srv/other.yaml" in out, out
        assert "nothing changed" in out and "reloaded" not in out
        assert snapshot(site.asterisk_dir) | {str(site.in_service): site.in_service.read_bytes()} == before
    assert "hotline-b12119" not in site.pbx.cli("features show")
    # A deploy killed with the lock held: the next one takes it over, reloads features and checks them.
    pid = crashed_holder(site.asterisk_dir)
    code, out = real_deploy(site, new)
    assert code == 0, out
    assert f"taking over the lock {lock_path(site.asterisk_dir)}" in out and f"pid={pid} " in out
    assert "reloaded features" in out
    assert f"{len(want.features)} one-key features as features.conf sets them" in out
    shown = site.pbx.cli("features show")
    assert shown_features(shown.splitlines()) >= want.features  # what Asterisk runs is what was rendered
    assert not lock_path(site.asterisk_dir).exists()


def test_a_tampered_lock_file_prints_no_terminal_escapes(site: tuple[Path, Path], tmp_path: Path) -> None:
    in_service, asterisk_dir = site
    lock_path(asterisk_dir).write_text("pid=1 \x1b[2J\x1b]0;owned\x07 config=x.yaml\n")
    fd = os.open(lock_path(asterisk_dir), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held by a holder whose line is hostile
        code, out = run_deploy(Plan(guidance_file(tmp_path), in_service, asterisk_dir, RenderOptions()), None)
    finally:
        os.close(fd)
    assert code == 1 and "(pid=1 [2J ]0;owned config=x.yaml)" in out and "\x1b" not in out and "\x07" not in out
    taken = io.StringIO()
    with deploy_lock(asterisk_dir, "second.yaml", taken):  # released now: taken over, the line shown clean
        pass
    assert "taking over" in taken.getvalue() and "\x1b" not in taken.getvalue()
