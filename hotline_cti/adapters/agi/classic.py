"""Classic AGI over stdin/stdout with pyst2's ``AGI`` class, for small sites that run no daemon.

Asterisk starts ``hotline-cti-agi route ${EXTEN},${HOTLINE_CITY}`` per call
(``AGI(hotline-cti-agi,route,${EXTEN},${HOTLINE_CITY})``). pyst2 reads the
environment and writes the commands; the replies are read by our own
:class:`AgiConnection`, because pyst2's ``get_result`` raises on ``(hangup)`` as a
variable value, on ``result=-1``, on ``511`` and on an inline ``HANGUP`` line.
The scripts, and the :class:`AgiConnection` that keeps the protocol and the dead-channel rule, are the
same sans-IO code the FastAGI server runs.

pyst2 0.5.1 quirks handled here: its ``AGI()`` installs a SIGHUP handler (only
possible in the main thread, which is where this runs; Asterisk's SIGHUP on
hangup then sets a flag instead of killing us, so the variables still get set);
it writes *text* to ``stdout`` (we give it a UTF-8 text wrapper over the pipe);
and it dumps the environment, caller number included, to ``stderr``, which
Asterisk copies to its log (we give it a sink that drops it).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import signal
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, BinaryIO

from asterisk.agi import AGI

from hotline_cti.adapters.agi.connection import NEED_DATA, AgiConnection, Closed
from hotline_cti.adapters.agi.protocol import AgiProtocolError, AgiReply
from hotline_cti.adapters.agi.scripts import select_script
from hotline_cti.adapters.agi.session import ScriptSession
from hotline_cti.clock import utc_now
from hotline_cti.core.table import RoutingTable
from hotline_cti.privacy import mask_numbers

log = logging.getLogger(__name__)


def classic_env(env: dict[str, str], args: Sequence[str]) -> dict[str, str]:
    """The environment as the scripts expect it: ``agi_arg_N`` are the script's own arguments.

    In classic AGI the script name is ``agi_arg_1``; FastAGI has it in the URL path.
    """
    out = {k: v for k, v in env.items() if not k.startswith("agi_arg_")}
    out.update({f"agi_arg_{i}": arg for i, arg in enumerate(args, 1)})
    return out


def _deadline(signum: int, frame: FrameType | None) -> None:
    raise TimeoutError("classic AGI session deadline passed")


def run_classic(
    name: str,
    args: Sequence[str],
    table: RoutingTable,
    *,
    stdin: BinaryIO,
    stdout: BinaryIO,
    clock: Callable[[], dt.datetime] | None = None,
    session_deadline: int = 60,
) -> int:
    """Run script ``name`` for the call on ``stdin``/``stdout``; the exit code (0 done, 1 failed).

    Must run in the main thread: pyst2 installs its SIGHUP handler, and the deadline is SIGALRM.
    """
    text_out = io.TextIOWrapper(stdout, encoding="utf-8", newline="\n", write_through=True)
    agi: Any = AGI(stdin=stdin, stdout=text_out, stderr=io.StringIO())  # pyst2 is untyped
    env = classic_env({str(k): str(v) for k, v in agi.env.items()}, args)
    now = (clock or utc_now)()
    script = select_script(name, env, table, now)
    if script is None:
        log.error("unknown AGI script %r (expected route or ivr)", name)
        return 1
    run = ScriptSession(script)
    conn = AgiConnection(env)  # pyst2 read the environment: the connection starts with a command to send
    previous = signal.signal(signal.SIGALRM, _deadline)
    signal.alarm(session_deadline)
    try:
        line = run.first()
        while line is not None:
            if agi._got_sighup:  # Asterisk's SIGHUP: the caller hung up
                conn.hang_up()
            out = conn.send(line)
            if out:
                agi.send_command(out.decode().removesuffix("\n"))
            while not isinstance(event := conn.next_event(), AgiReply):
                if event is NEED_DATA:
                    conn.receive_data(stdin.readline())  # b"" when Asterisk closed the pipe
                elif isinstance(event, Closed):
                    return 0  # the channel is gone
            line = run.after(event)
        return 0
    except (AgiProtocolError, TimeoutError, OSError) as exc:
        log.warning("classic AGI %s ended: %s", name, mask_numbers(str(exc)) or type(exc).__name__)
        return 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
