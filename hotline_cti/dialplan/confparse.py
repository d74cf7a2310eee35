"""A parser for the Asterisk ``.conf`` files this project generates (and their hand-written cousins).

It reads sections, ``key = value`` / ``key => value`` settings and, for
extensions.conf, ``exten =>`` / ``same =>`` lines with numbered, ``n`` and
labelled priorities, plus ``include =>``. Errors name the file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class ConfSyntaxError(ValueError):
    """A line that is not valid .conf syntax."""


@dataclass(frozen=True, slots=True)
class Step:
    """One dialplan priority: ``app(args)`` at ``priority`` with an optional label."""

    priority: int
    label: str | None
    app: str
    args: str
    line: int


@dataclass(slots=True)
class Context:
    """A dialplan context: extensions by name, each a list of steps in priority order."""

    name: str
    extensions: dict[str, list[Step]] = field(default_factory=dict)
    includes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Section:
    """A section of a non-dialplan .conf file: its settings in file order (keys may repeat)."""

    name: str
    items: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str) -> str | None:
        """The last value of ``key``, or None."""
        found = [v for k, v in self.items if k == key]
        return found[-1] if found else None

    def all(self, key: str) -> list[str]:
        """Every value of ``key`` in order."""
        return [v for k, v in self.items if k == key]


_SECTION = re.compile(r"^\[([^\]]+)\](\(.*\))?$")
_PRIO = re.compile(r"^(\d+|n)(?:\(([A-Za-z0-9_-]+)\))?$")


def strip_comment(line: str) -> str:
    """``line`` without its ``;`` comment (``\\;`` is a literal semicolon)."""
    out = []
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            out.append(line[i : i + 2])
            i += 2
            continue
        if ch == ";":
            break
        out.append(ch)
        i += 1
    return "".join(out).strip()


def _split_setting(line: str, where: str) -> tuple[str, str]:
    match = re.match(r"^([^=]+?)\s*=>?\s*(.*)$", line)
    if match is None:
        raise ConfSyntaxError(f"{where}: expected 'key = value', got {line!r}")
    return match.group(1).strip(), match.group(2).strip()


def parse_sections(text: str, filename: str = "<conf>") -> list[Section]:
    """Parse a settings file (queues.conf, features.conf, confbridge.conf) into sections."""
    sections: list[Section] = []
    current: Section | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = strip_comment(raw)
        if not line:
            continue
        where = f"{filename}:{number}"
        head = _SECTION.match(line)
        if head:
            current = Section(head.group(1))
            sections.append(current)
            continue
        if current is None:
            raise ConfSyntaxError(f"{where}: setting outside any [section]: {line!r}")
        current.items.append(_split_setting(line, where))
    return sections


def split_app(text: str, where: str) -> tuple[str, str]:
    """Split ``App(args)`` into name and argument text; a bare ``App`` has empty args."""
    text = text.strip()
    paren = text.find("(")
    if paren < 0:
        if not re.match(r"^[A-Za-z][A-Za-z0-9_]*$", text):
            raise ConfSyntaxError(f"{where}: bad application {text!r}")
        return text, ""
    if not text.endswith(")"):
        raise ConfSyntaxError(f"{where}: application call does not end with ')': {text!r}")
    return text[:paren].strip(), text[paren + 1 : -1]


def parse_extensions(text: str, filename: str = "extensions.conf") -> dict[str, Context]:
    """Parse extensions.conf into contexts; raise :class:`ConfSyntaxError` naming file:line."""
    contexts: dict[str, Context] = {}
    current: Context | None = None
    last_exten: str | None = None
    last_prio = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = strip_comment(raw)
        if not line:
            continue
        where = f"{filename}:{number}"
        head = _SECTION.match(line)
        if head:
            name = head.group(1)
            current = contexts.setdefault(name, Context(name))
            last_exten, last_prio = None, 0
            continue
        if current is None:
            raise ConfSyntaxError(f"{where}: line outside any [context]: {line!r}")
        key, value = _split_setting(line, where)
        if key == "include":
            current.includes.append(value)
            continue
        if key not in ("exten", "same"):
            if current.name in ("general", "globals"):
                continue
            raise ConfSyntaxError(f"{where}: unknown dialplan keyword {key!r}")
        if key == "exten":
            parts = value.split(",", 2)
            if len(parts) != 3:
                raise ConfSyntaxError(f"{where}: expected 'exten => name,priority,App(args)', got {line!r}")
            exten, prio_text, app_text = (p.strip() for p in parts)
        else:
            if last_exten is None:
                raise ConfSyntaxError(f"{where}: 'same =>' before any 'exten =>'")
            parts = value.split(",", 1)
            if len(parts) != 2:
                raise ConfSyntaxError(f"{where}: expected 'same => priority,App(args)', got {line!r}")
            exten = last_exten
            prio_text, app_text = (p.strip() for p in parts)
        match = _PRIO.match(prio_text)
        if match is None:
            raise ConfSyntaxError(f"{where}: bad priority {prio_text!r}")
        steps = current.extensions.setdefault(exten, [])
        if match.group(1) == "n":
            if exten != last_exten or not steps:
                raise ConfSyntaxError(f"{where}: priority 'n' needs a previous priority of {exten!r}")
            prio = last_prio + 1
        else:
            prio = int(match.group(1))
        if any(s.priority == prio for s in steps):
            raise ConfSyntaxError(f"{where}: priority {prio} of {exten!r} in [{current.name}] is defined twice")
        app, args = split_app(app_text, where)
        steps.append(Step(prio, match.group(2), app, args, number))
        steps.sort(key=lambda s: s.priority)
        last_exten, last_prio = exten, prio
    return contexts


def split_args(args: str, sep: str = ",") -> list[str]:
    """Split application arguments on ``sep`` outside parentheses, brackets, braces and quotes."""
    out: list[str] = []
    depth = 0
    quote = False
    cur: list[str] = []
    i = 0
    while i < len(args):
        ch = args[i]
        if ch == "\\" and i + 1 < len(args):
            cur.append(args[i + 1])
            i += 2
            continue
        if ch == '"':
            quote = not quote
        elif not quote and ch in "([{":
            depth += 1
        elif not quote and ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0 and not quote:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out


def match_pattern(pattern: str, exten: str) -> bool:
    """Asterisk extension matching: literal names, or ``_`` patterns with X Z N [..] . and !."""
    if not pattern.startswith("_"):
        return pattern == exten
    pat = pattern[1:]
    i = j = 0
    while i < len(pat):
        ch = pat[i]
        if ch == ".":
            return j < len(exten)
        if ch == "!":
            return True
        if j >= len(exten):
            return False
        c = exten[j]
        if ch in "Xx":
            ok = c.isdigit()
        elif ch in "Zz":
            ok = c in "123456789"
        elif ch in "Nn":
            ok = c in "23456789"
        elif ch == "[":
            end = pat.index("]", i)
            chars = pat[i + 1 : end]
            ok = any(
                (chars[k + 1 : k + 2] == "-" and k + 2 < len(chars) and chars[k] <= c <= chars[k + 2]) or chars[k] == c
                for k in range(len(chars))
            )
            i = end
        else:
            ok = ch == c
        if not ok:
            return False
        i += 1
        j += 1
    return j == len(exten)


def find_extension(context: Context, exten: str) -> str | None:
    """The extension of ``context`` that ``exten`` runs: an exact name wins over patterns."""
    if exten in context.extensions:
        return exten
    matches = [p for p in context.extensions if p.startswith("_") and match_pattern(p, exten)]
    # Asterisk prefers the most specific pattern; our generated patterns never overlap beyond _X. / _+X.
    return sorted(matches, key=lambda p: (-len(p), p))[0] if matches else None
