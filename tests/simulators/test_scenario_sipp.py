"""SIPp scenario files: well-formed, a full INVITE/ACK/BYE dialog, fed by our injection files, numbers configured.

Placing SIP calls needs a real Asterisk, which CI does not have; here only the files, the
injection format, ``run.sh``'s syntax and the installed ``sipp`` are checked.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hotline_cti.config.checked import load_checked
from simulators.asterisk_load import sipp_binary
from simulators.pbx import Arrival
from simulators.pbx.routing import CoreRouter
from simulators.scenario import load_scenario
from simulators.trace import write_sipp_injection
from tests.paths import REPO

ROOT = REPO
SIPP = ROOT / "simulators" / "sipp"
XMLS = sorted(SIPP.glob("uac_*.xml"))  # callers; uas_agent.xml answers as the agents
SCENARIOS = sorted((ROOT / "simulators" / "scenarios").glob("*.yaml"))


def methods(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    assert root.tag == "scenario"
    return [(el.text or "").strip().split(" ", 1)[0] for el in root.iter("send")]


def test_there_are_scenario_files() -> None:
    names = {p.name for p in SIPP.glob("*.xml")}
    assert names == {"uac_line.xml", "uac_12345_menu.xml", "uas_agent.xml", "uas_busy.xml"}


def test_the_busy_seat_refuses_every_call_with_486() -> None:
    """uas_busy.xml (a busy transfer target in tests/asterisk/test_asterisk_transfers.py): INVITE, 486, its ACK."""
    root = ET.parse(SIPP / "uas_busy.xml").getroot()
    assert [el.get("request") for el in root.iter("recv")] == ["INVITE", "ACK"]
    assert [(el.text or "").strip().split("\n", 1)[0] for el in root.iter("send")] == ["SIP/2.0 486 Busy Here"]


@pytest.mark.parametrize("path", XMLS, ids=lambda p: p.stem)
def test_every_scenario_is_a_full_dialog(path: Path) -> None:
    sent = methods(path)
    assert sent[0] == "INVITE" and "ACK" in sent and sent[-1] == "BYE"
    root = ET.parse(path).getroot()
    assert any(el.get("response") == "200" for el in root.iter("recv"))
    # the caller holds in ticks, each a wait for the PBX's BYE (a released call), until its hold runs out
    assert any(el.get("request") == "BYE" and el.get("ontimeout") for el in root.iter("recv"))
    assert any(el.get("assign_to") == "hold" for el in root.iter("todouble"))


@pytest.mark.parametrize("path", XMLS, ids=lambda p: p.stem)
def test_injection_files_have_every_field_the_scenario_reads(path: Path, tmp_path: Path) -> None:
    arrivals = [
        Arrival(at=1.0, dialled="12315", caller="13800000001", service=60.0),
        Arrival(at=2.0, dialled="12345", caller="13800000002", ivr="2", service=90.5),
    ]
    assert write_sipp_injection(arrivals, tmp_path / "line.csv", tmp_path / "menu.csv", menu_ms=15000) == (1, 1)
    line = (tmp_path / "line.csv").read_text().splitlines()
    menu = (tmp_path / "menu.csv").read_text().splitlines()
    assert line == ["SEQUENTIAL", "12315;60000;13800000001"]
    assert menu == ["SEQUENTIAL", "12345;105500;13800000002;2;15000"]
    write_sipp_injection(arrivals, tmp_path / "line.csv", tmp_path / "menu.csv", menu_ms=2000, speed=10)
    assert (tmp_path / "line.csv").read_text().splitlines()[1] == "12315;6000;13800000001"  # held 10x shorter
    assert (tmp_path / "menu.csv").read_text().splitlines()[1] == "12345;11050;13800000002;2;2000"
    with pytest.raises(ValueError, match="speed"):
        write_sipp_injection(arrivals, tmp_path / "l.csv", tmp_path / "m.csv", menu_ms=2000, speed=0)
    used = {int(n) for n in re.findall(r"\[field(\d+)\]", path.read_text(encoding="utf-8"))}
    columns = len((menu if "menu" in path.name else line)[1].split(";"))
    assert used == set(range(columns))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_number_a_scenario_dials_is_in_its_merger_file(path: Path) -> None:
    scenario, config = load_scenario(path)
    route = CoreRouter(load_checked(str(config)).table)
    for number in scenario.lines:
        decided = route(Arrival(at=scenario.start(route.table.timezone) + 36000, dialled=number, caller="13800000000"))
        assert decided.mode != "unknown", number


def test_run_sh_syntax_and_usage() -> None:
    script = SIPP / "run.sh"
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)
    usage = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
    assert usage.returncode == 2 and "PBX you own" in usage.stderr


def ensure_sipp() -> str:
    """The sipp binary, installing Debian's sip-tester first when it is missing (as root)."""
    return sipp_binary()


def test_sipp_is_installed() -> None:
    out = subprocess.run([ensure_sipp(), "-v"], capture_output=True, text=True, check=False)
    assert re.search(r"SIPp v3\.\d+", out.stdout + out.stderr)


# A BYE that lands between two of the hold loop's waits is not aborted on: the PBX resends it (SIP timer A)
# and the next wait takes it. run.sh passes the same flag.
SIPP_BEHAVIOUR = ("-default_behaviors", "-abortunexp")


def _sipp_pair(tmp_path: Path, hold_ms: int, talk_ms: int) -> tuple[str, str]:
    """One uac_line.xml call into one uas_agent.xml; the two SIPp reports (caller, agent)."""
    sipp = ensure_sipp()
    ports = []
    for _ in range(2):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    (tmp_path / "talk.csv").write_text(f"SEQUENTIAL\n{talk_ms}\n")
    (tmp_path / "line.csv").write_text(f"SEQUENTIAL\n12315;{hold_ms};13800000001\n")
    common = ["-i", "127.0.0.1", "-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error", *SIPP_BEHAVIOUR]
    agent = subprocess.Popen(
        [sipp, "-sf", str(SIPP / "uas_agent.xml"), "-inf", str(tmp_path / "talk.csv"), "-p", str(ports[0]), *common],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        uac = [sipp, "-sf", str(SIPP / "uac_line.xml"), "-inf", str(tmp_path / "line.csv"), "-p", str(ports[1])]
        caller = subprocess.run(
            [*uac, *common, f"127.0.0.1:{ports[0]}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        agent_out, _ = agent.communicate(timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    return caller.stdout + caller.stderr, agent_out


def _counts(report: str) -> tuple[int, int]:
    ok = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", report)
    failed = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", report)
    return int(ok[-1]), int(failed[-1])


@pytest.mark.parametrize(("hold_ms", "talk_ms"), [(3000, 400), (400, 3000)], ids=["pbx-hangs-up", "caller-hangs-up"])
def test_a_call_ends_well_whichever_side_hangs_up(tmp_path: Path, hold_ms: int, talk_ms: int) -> None:
    """A caller released by the PBX (retired line, agent done) and an agent whose caller left both count as
    successful calls in SIPp's own report."""
    caller, agent = _sipp_pair(tmp_path, hold_ms, talk_ms)
    assert _counts(caller) == (1, 0), caller
    assert _counts(agent) == (1, 0), agent
