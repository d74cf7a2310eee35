"""Render prompt texts to the sound files Asterisk plays: espeak-ng (Mandarin) then sox to 8 kHz PCM.

Each ``<id>.wav`` in the output directory is 8000 Hz, mono, 16-bit signed
PCM, played by Asterisk as ``hotline/<id>``. A manifest records, per file it
made, a hash of the spoken text, the voice and the settings; a re-run renders
only what changed. Files the build did not make (e.g. a studio recording
dropped in as ``welcome.wav``) are never overwritten or removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from hotline_cti.config.catalogue import PROMPT_ID

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
SAMPLE_RATE = 8000
# Telephone style: a run of 3+ digits is a number read digit by digit, 1 as 幺 (12345 = 幺二三四五),
# not as a quantity (一万两千三百四十五).
_DIGIT_RUN = re.compile(r"[0-9]{3,}")
_DIGIT_WORDS = dict(zip("0123456789", "零幺二三四五六七八九", strict=True))


class ToolMissing(RuntimeError):
    """espeak-ng or sox is not installed, or espeak-ng lacks the voice."""


class RenderError(RuntimeError):
    """One prompt failed to render; the message names the prompt and the tool's error."""


@dataclass(frozen=True)
class Voice:
    """espeak-ng voice and speech settings; part of every file's hash."""

    name: str = "cmn"
    speed: int = 175  # espeak-ng words per minute (its default); slower makes long prompts drag
    pitch: int = 50
    gain_db: float = -3.0  # sox normalises peaks to this level: loud enough, no clipping after resampling

    def settings(self) -> dict[str, object]:
        """The settings as the manifest records them."""
        return {
            "voice": self.name,
            "speed": self.speed,
            "pitch": self.pitch,
            "gain_db": self.gain_db,
            "rate": SAMPLE_RATE,
            "channels": 1,
            "bits": 16,
        }


@dataclass
class BuildReport:
    """What one build did, by prompt id."""

    rendered: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)  # files we did not make: left alone
    failed: dict[str, str] = field(default_factory=dict)


def speech_text(text: str) -> str:
    """The text as espeak-ng should say it: hotline numbers digit by digit."""
    return _DIGIT_RUN.sub(lambda m: "".join(_DIGIT_WORDS[d] for d in m.group()), text)


def file_hash(text: str, voice: Voice) -> str:
    """Hash of what decides a file's audio: the spoken text, the voice and the settings."""
    blob = json.dumps({"text": speech_text(text), **voice.settings()}, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def check_tools(voice: Voice) -> tuple[str, str]:
    """Paths of espeak-ng and sox; raise :class:`ToolMissing` saying which Debian package to install."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise ToolMissing("espeak-ng not found: install the Debian package espeak-ng (apt-get install espeak-ng)")
    sox = shutil.which("sox")
    if sox is None:
        raise ToolMissing("sox not found: install the Debian package sox (apt-get install sox)")
    listing = subprocess.run(
        [espeak, f"--voices={voice.name}"], capture_output=True, text=True, check=False, timeout=30
    ).stdout
    if not any(line.split()[1:2] == [voice.name] for line in listing.splitlines()[1:]):
        raise ToolMissing(
            f"espeak-ng has no voice {voice.name!r} (see `espeak-ng --voices=zh`; "
            "the Debian package espeak-ng-data provides cmn)"
        )
    return espeak, sox


def read_manifest(out_dir: Path) -> dict[str, dict[str, object]]:
    """The manifest of ``out_dir``: file name -> {id, text, hash, settings}; empty if absent or unreadable."""
    try:
        data = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return files if isinstance(files, dict) else {}


def _write_manifest(out_dir: Path, files: Mapping[str, Mapping[str, object]]) -> None:
    body = json.dumps({"version": MANIFEST_VERSION, "files": dict(sorted(files.items()))}, ensure_ascii=False, indent=2)
    tmp = out_dir / f".{MANIFEST}.tmp"
    tmp.write_text(body + "\n", encoding="utf-8")
    os.replace(tmp, out_dir / MANIFEST)  # atomic: a crash never leaves half a manifest


def render_one(text: str, dest: Path, voice: Voice, espeak: str, sox: str) -> None:
    """Speak ``text`` into ``dest`` (8 kHz mono 16-bit WAV); the file appears whole or not at all."""
    with tempfile.TemporaryDirectory(prefix="prompt-", dir=dest.parent) as tmp:
        raw = Path(tmp) / "raw.wav"
        out = Path(tmp) / "out.wav"
        steps = (
            # -b 1: input is UTF-8; text on stdin so nothing in it is read as an option
            [espeak, "-v", voice.name, "-s", str(voice.speed), "-p", str(voice.pitch), "-b", "1", "-w", str(raw)],
            [
                sox,
                str(raw),
                "-r",
                str(SAMPLE_RATE),
                "-c",
                "1",
                "-b",
                "16",
                "-e",
                "signed-integer",
                str(out),
                "gain",
                "-n",
                str(voice.gain_db),
            ],
        )
        for i, cmd in enumerate(steps):
            done = subprocess.run(
                cmd,
                input=speech_text(text) if i == 0 else "",
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
            if done.returncode != 0:
                tool = Path(cmd[0]).name
                raise RenderError(f"{tool} failed ({done.returncode}): {done.stderr.strip()[:300]}")
        os.replace(out, dest)


def build_sounds(
    prompts: Mapping[str, str],
    out_dir: Path,
    *,
    force: bool = False,
    jobs: int = 2,
    voice: Voice | None = None,
    progress: Callable[[str], None] | None = None,
) -> BuildReport:
    """Render every prompt of ``prompts`` (id -> text) that changed since the last build into ``out_dir``.

    ``force`` re-renders every file the build made. Renders run in a pool of
    ``jobs`` workers (each runs espeak-ng then sox as subprocesses). Raises
    :class:`ToolMissing` before doing anything if a tool is missing and
    ValueError for an id that cannot be a file name.
    """
    voice = voice or Voice()
    bad = [p for p in prompts if not PROMPT_ID.match(p)]
    if bad:
        raise ValueError(f"not valid prompt ids (file names): {', '.join(map(repr, bad))}")
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(out_dir)
    report = BuildReport()
    todo: list[tuple[str, str, str]] = []
    for prompt_id, text in prompts.items():
        name = f"{prompt_id}.wav"
        digest = file_hash(text, voice)
        entry = manifest.get(name)
        exists = (out_dir / name).is_file()
        if exists and entry is None:
            report.foreign.append(prompt_id)
        elif exists and not force and isinstance(entry, dict) and entry.get("hash") == digest:
            report.unchanged.append(prompt_id)
        else:
            todo.append((prompt_id, text, digest))
    if not todo:
        return report
    espeak, sox = check_tools(voice)

    def work(item: tuple[str, str, str]) -> tuple[str, str, str, str | None]:
        prompt_id, text, digest = item
        try:
            render_one(text, out_dir / f"{prompt_id}.wav", voice, espeak, sox)
        except (RenderError, OSError, subprocess.TimeoutExpired) as exc:
            return prompt_id, text, digest, str(exc)
        return prompt_id, text, digest, None

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for prompt_id, text, digest, error in pool.map(work, todo):
            if error is not None:
                report.failed[prompt_id] = error
                continue
            manifest[f"{prompt_id}.wav"] = {"id": prompt_id, "text": text, "hash": digest, **voice.settings()}
            report.rendered.append(prompt_id)
            if progress is not None:
                progress(prompt_id)
    _write_manifest(out_dir, manifest)
    return report
