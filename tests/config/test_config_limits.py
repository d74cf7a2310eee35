"""No input stalls config loading: alias bombs, huge files, devices and FIFOs are refused with file:line.

Also: ``extends`` stays in the config's directory tree and never shows a foreign file, and no file or
path argument of the command line ends in a traceback (issue 13).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hotline_cti.cli.main import main
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.limits import MAX_FILE_BYTES
from hotline_cti.config.loader import ENV_CONFIG_ROOT, load_config
from tests.conftest import SMALL_YAML

# Nine levels of nine aliases, 341 bytes: 9**9 (387 million) strings once expanded.
BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{c}: &{c} [{','.join([f'*{chr(ord(c) - 1)}'] * 9)}]\n" for c in "bcdefghi"
)
SECRET = "root:$6$not-a-real-hash-but-secret:19000:0:99999:7:::"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


def test_the_341_byte_alias_bomb_is_refused_with_its_place(tmp_path: Path) -> None:
    assert len(BOMB.encode()) <= 350
    (problem,) = problems(write(tmp_path / "bomb.yaml", BOMB))
    assert problem.startswith(f"{tmp_path / 'bomb.yaml'}:1:")
    assert "aliases expand to more than 10,000 values" in problem


def test_a_few_aliases_are_still_fine(tmp_path: Path) -> None:
    text = SMALL_YAML.replace("mode: merge, cutover: 2021-08-31}", "mode: merge, cutover: &c 2021-08-31}", 1)
    text = text.replace("mode: merge, cutover: 2021-08-31,", "mode: merge, cutover: *c,", 1)
    assert "*c" in text
    loaded = load_config(write(tmp_path / "cfg.yaml", text))
    assert loaded.model.hotlines[1].cutover == loaded.model.hotlines[0].cutover


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    (problem,) = problems(write(tmp_path / "loop.yaml", "a: &a [1, *a]\n"))
    assert ":1:4: an alias refers to the node that contains it" in problem


def test_a_list_as_a_key_is_refused_not_printed(tmp_path: Path) -> None:
    # printing a key built from the bomb's aliases would expand them all
    out = problems(write(tmp_path / "key.yaml", BOMB + "? *i\n: 1\n"))
    assert any("aliases expand" in p for p in out)
    out = problems(write(tmp_path / "key2.yaml", "? [1, 2]\n: x\n"))
    assert any("key.yaml" not in p and ":1:3: a key must be a plain value" in p for p in out)


def test_a_file_over_the_size_cap_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("# padding\n" * (MAX_FILE_BYTES // 10 + 1))
    assert problems(path) == [f"{path}:1:1: file too large: over 4 MiB"]


def test_devices_fifos_and_directories_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    assert problems(Path("/dev/zero")) == ["/dev/zero: cannot read: not a regular file (a device, FIFO or socket)"]
    assert problems(fifo) == [f"{fifo}: cannot read: not a regular file (a device, FIFO or socket)"]
    assert problems(tmp_path) == [f"{tmp_path}: cannot read: it is a directory, not a file"]
    assert problems(tmp_path / "none.yaml") == [f"{tmp_path / 'none.yaml'}: cannot read: No such file or directory"]


def test_an_unreadable_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "cfg.yaml", SMALL_YAML)

    def denied(*args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", denied)  # the tests run as root, which chmod cannot stop
    assert problems(path) == [f"{path}: cannot read: Permission denied"]


@pytest.mark.parametrize("target", ["../../etc/passwd", "/etc/passwd", "../outside/secret.yaml", "link.yaml"])
def test_extends_outside_the_config_tree_is_refused_unread(tmp_path: Path, target: str) -> None:
    write(tmp_path / "outside" / "secret.yaml", SECRET + "\n")
    (tmp_path / "cfg" / "link.yaml").parent.mkdir(parents=True)
    (tmp_path / "cfg" / "link.yaml").symlink_to(tmp_path / "outside" / "secret.yaml")
    path = write(tmp_path / "cfg" / "city.yaml", f"extends: {target}\nhotlines: []\n")
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:1:10: extends: {target!r} is outside {tmp_path / 'cfg'}")
    assert "root:" not in problem and "secret:" not in problem


def test_an_allowed_root_lets_extends_reach_a_shared_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "shared" / "province.yaml", SMALL_YAML)
    city = write(tmp_path / "cities" / "city.yaml", "extends: ../shared/province.yaml\nhotlines: []\n")
    with pytest.raises(ConfigError):
        load_config(city)
    monkeypatch.setenv(ENV_CONFIG_ROOT, str(tmp_path / "shared"))
    assert len(load_config(city).model.hotlines) == 10


def test_cli_commands_refuse_the_bomb_with_file_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bomb = write(tmp_path / "bomb.yaml", BOMB)
    good = write(tmp_path / "good.yaml", SMALL_YAML)
    for argv in (
        ["config", "validate", str(bomb)],
        ["route", "12300", "--config", str(bomb)],
        ["config", "diff", str(good), str(bomb)],
        ["config", "diff", str(bomb), str(good)],
    ):
        assert main(argv) == 1, argv
        err = capsys.readouterr()
        assert f"{bomb}:1:" in err.out + err.err and "alias bomb" in err.out + err.err, argv


def test_validate_dev_zero_is_one_line_and_quick(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hotline_cti.cli.main", "config", "validate", "/dev/zero", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,  # it used to run out of memory after 10 s and 3.8 GB
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert "/dev/zero: cannot read: not a regular file" in done.stdout + done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["dialplan", "render", "CONFIG", "-o", "/proc/nope/"],
        ["report", "--database", "sqlite:///DIR/x.db", "-o", "/proc/nope/report.txt"],
        [
            "simulate",
            "simulators/scenarios/guangxi-busy-day.yaml",
            "--virtual",
            "--hours",
            "9-10",
            "--replay",
            "/dev/zero",
        ],
        ["wallboard", "--ami", "127.0.0.1:1", "--config", "CONFIG", "--users", "/dev/zero"],
        ["staffing", "merger", "--config", "CONFIG", "--traffic", "DIR"],
        ["prompts", "list", "--config", "/dev/zero"],
    ],
)
def test_path_arguments_never_end_in_a_traceback(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path / "small.yaml", SMALL_YAML)
    if "report" in argv:  # a database with no calls, so the report gets as far as writing
        assert main(["report", "--database", f"sqlite:///{tmp_path}/x.db"]) == 1  # no such database
        sqlite3.connect(tmp_path / "x.db").close()
        assert "no database at" in capsys.readouterr().err
    monkeypatch.setenv("HOTLINE_AMI_HOST", "127.0.0.1")
    monkeypatch.setenv("HOTLINE_AMI_USER", "u")
    monkeypatch.setenv("HOTLINE_AMI_SECRET", "s")
    args = [a.replace("CONFIG", str(config)).replace("DIR", str(tmp_path)) for a in argv]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err
    # one line for the bad path (report notes first that the database holds no calls)
    assert len([line for line in err.splitlines() if "holds no call records" not in line]) == 1, err


def test_an_unknown_option_before_the_command_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--bogus"])
    assert info.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
