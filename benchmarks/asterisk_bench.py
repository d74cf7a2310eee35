"""What the controller costs a real Asterisk 22: SIPp calls through chan_pjsip, routed vs a static dialplan.

``python -m benchmarks.asterisk_bench`` (root; the rig of scripts/asterisk-rig.sh; about 3 minutes).
One Asterisk runs the generated Guangxi dialplan unchanged and ``hotline-cti serve`` (routing only,
``--clock-start 2021-12-15T10:00+08:00``). At each rate (20, 50, 100, 200 calls/s, ``--seconds`` of
calls each) two SIPp runs place the same calls, one after the other:

* **controller**: 12315 into the ``anonymous`` endpoint (context hotline-inbound): the generated dialplan
  answers, asks the controller (FastAGI ``route``), dispatches and queues in ``gx-l12315``;
* **static**: the same calls from the endpoint ``benchstatic`` (identified by the From user) whose context
  ``bench-static`` answers and queues in ``gx-l12315`` at once, no controller.

Latency is Asterisk's own: the caller channel's Newchannel (the INVITE) to its QueueCallerJoin, both AMI
Timestamps, and the first dialplan step to Queue() from full.log, where the AGI() step's own length is the
controller's share. Both paths Answer() first, and Answer() waits up to 500 ms for the caller's first media
frame (SIPp sends none), so both figures carry the same 0.5 s; the difference is what the controller (and
the generated dialplan's steps around it) adds. CPU: utime + stime from /proc/<pid>/stat of serve's
routing process and of Asterisk, before and after each controller run, per call.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hotline_cti.config.catalogue import known_prompt_ids, load_catalogue
from hotline_cti.config.loader import load_config
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all, write_all
from simulators.asterisk import REPO, AsteriskInstance, free_port, rig_root, silent_wav, start_asterisk
from simulators.asterisk_load import (
    ANONYMOUS_MODULE,
    CALLER_PREFIX,
    Serve,
    agi_steps,
    caller_legs,
    cpu_seconds,
    dialplan_to_queue,
    filter_events,
    percentile,
    pjsip_endpoints,
    sipp_uac,
    wait_idle,
)

CONFIG = REPO / "merger_config" / "guangxi.yaml"
CLOCK_START = "2021-12-15T10:00:00+08:00"
NUMBER, QUEUE = "12315", "gx-l12315"  # after its cut-over 12315 goes straight to its skill queue, no prompt
STATIC_USER = "benchstatic"
STATIC = f"""
[bench-static]
exten => _X.,1,Answer()
 same => n,Queue({QUEUE})
 same => n,Hangup()
"""
STATIC_ENDPOINT = f"""
[{STATIC_USER}]
type = endpoint
context = bench-static
disallow = all
allow = alaw,ulaw
direct_media = no
"""


@dataclass
class Result:
    variant: str
    rate: int
    calls: int
    joined: int
    p50: float  # full.log: first dialplan step to Queue()
    p99: float
    ami_p50: float  # AMI: Newchannel to QueueCallerJoin Timestamps
    ami_p99: float
    agi_p50: float  # full.log: the AGI() step to the next (nan on the static path, which has none)
    agi_p99: float
    routing_cpu: float = 0.0  # seconds, whole run
    asterisk_cpu: float = 0.0


def run_once(
    pbx: AsteriskInstance, work: Path, variant: str, rate: int, seconds: float, hold_ms: int, routing_pid: int
) -> Result:
    calls = int(rate * seconds)
    caller = STATIC_USER if variant == "static" else "13800138000"
    prefix = f"PJSIP/{STATIC_USER}-" if variant == "static" else CALLER_PREFIX
    ami = pbx.ami()
    filter_events(ami)
    try:
        cpu0 = (cpu_seconds(routing_pid), cpu_seconds(pbx.pid))
        run = sipp_uac(
            work, "uac_line.xml", [f"{NUMBER};{hold_ms};{caller}"] * calls, rate, f"127.0.0.1:{pbx.sip_port}"
        )
        run.wait(seconds + 120)
        left = wait_idle(pbx, 60)
        cpu1 = (cpu_seconds(routing_pid), cpu_seconds(pbx.pid))
        time.sleep(0.3)
        legs = caller_legs(list(ami.events), prefix=prefix)
    finally:
        ami.close()
    if left:
        print(f"warning: {left} channels still up after the {variant} run at {rate}/s", file=sys.stderr)
    joined = [leg for leg in legs.values() if leg.joins and leg.joins[0][0] == QUEUE]
    ami_waits = [t for leg in joined if (t := leg.first_join_after()) is not None]
    full = pbx.log_text("full.log")
    steps = list(dialplan_to_queue(full, [leg.channel for leg in joined], QUEUE).values())
    in_agi = list(agi_steps(full, [leg.channel for leg in joined]).values())
    return Result(
        variant,
        rate,
        calls,
        len(joined),
        percentile(steps, 0.5),
        percentile(steps, 0.99),
        percentile(ami_waits, 0.5),
        percentile(ami_waits, 0.99),
        percentile(in_agi, 0.5),
        percentile(in_agi, 0.99),
        cpu1[0] - cpu0[0],
        cpu1[1] - cpu0[1],
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.asterisk_bench", description=__doc__.splitlines()[0])
    p.add_argument("--rates", default="20,50,100,200", help="calls per second, comma-separated")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds of calls at each rate and variant")
    p.add_argument("--hold-ms", type=int, default=1000, help="each caller's stay in the queue before hanging up")
    p.add_argument(
        "--routing-nice",
        type=int,
        default=None,
        metavar="N",
        help="renice serve's routing process to N (e.g. -5, as a systemd Nice= would) before the runs",
    )
    args = p.parse_args(argv)
    rates = [int(r) for r in args.rates.split(",")]

    root = rig_root()
    work = Path(tempfile.mkdtemp(prefix="asterisk-bench-"))
    cfg = load_config(CONFIG).model
    port = free_port()
    gen = work / "generated"
    write_all(render_all(cfg, RenderOptions(controllers=(f"127.0.0.1:{port}",))), gen)
    sounds = {pid: silent_wav(0.1) for pid in known_prompt_ids(load_catalogue(), cfg)}
    pjsip = pjsip_endpoints(free_port(socket.SOCK_DGRAM), [], []) + STATIC_ENDPOINT
    pbx = start_asterisk(
        root,
        name="bench",
        generated_dir=gen,
        extra_extensions=STATIC,
        pjsip=pjsip,
        sounds=sounds,
        modules=(ANONYMOUS_MODULE,),
        boot_timeout=60.0,
    )
    serve = Serve(CONFIG, port, pbx.ami_port, work / "bench.db", work, clock_start=CLOCK_START, with_ami=False)
    results: list[Result] = []
    try:
        serve.start()
        routing = serve.child_pid("routing")
        if args.routing_nice is not None:
            os.setpriority(os.PRIO_PROCESS, routing, args.routing_nice)
        for rate in rates:
            for variant in ("static", "controller"):
                r = run_once(pbx, work, variant, rate, args.seconds, args.hold_ms, routing)
                results.append(r)
                print(
                    f"  {variant:10s} {rate:4d}/s: {r.joined}/{r.calls} joined; first step to Queue() p50"
                    f" {r.p50 * 1000:.1f} ms, p99 {r.p99 * 1000:.1f} ms; AMI Newchannel to QueueCallerJoin p50"
                    f" {r.ami_p50 * 1000:.1f} ms, p99 {r.ami_p99 * 1000:.1f} ms",
                    file=sys.stderr,
                )
    finally:
        serve.stop()
        pbx.stop()
    print(table(results, args.seconds, args.hold_ms))
    return 0


def table(results: list[Result], seconds: float, hold_ms: int) -> str:
    by = {(r.variant, r.rate): r for r in results}
    lines = [
        f"Asterisk 22 + SIPp, {seconds:g} s of calls per rate and variant, each caller holding {hold_ms} ms in {QUEUE}.",
        "Latency: the caller channel's first dialplan step to its Queue() step (full.log, ms resolution); both paths",
        "include Answer()'s 500 ms wait for the caller's first media frame. AMI: Newchannel to QueueCallerJoin",
        "Timestamps (stamped when the manager formats the event, so they also carry its event backlog).",
        "In AGI(): the controller's own share, the AGI() step to the next step (full.log); the rest of 'added' is",
        "the generated dialplan's other steps (tags, recording, queue options) against the static path's two.",
        "",
        "| calls/s | joined (static / controller) | static p50 / p99 | controller p50 / p99 | added p50 | added p99 |"
        " in AGI() p50 / p99 | AMI added p50 / p99 | controller CPU/call | Asterisk CPU/call | controller / Asterisk |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rate in sorted({r.rate for r in results}):
        s, c = by[("static", rate)], by[("controller", rate)]
        ctl = c.routing_cpu / max(c.joined, 1)
        ast = c.asterisk_cpu / max(c.joined, 1)
        lines.append(
            f"| {rate} | {s.joined}/{s.calls} / {c.joined}/{c.calls} | {s.p50 * 1000:.0f} / {s.p99 * 1000:.0f} ms"
            f" | {c.p50 * 1000:.0f} / {c.p99 * 1000:.0f} ms | {(c.p50 - s.p50) * 1000:+.0f} ms"
            f" | {(c.p99 - s.p99) * 1000:+.0f} ms | {c.agi_p50 * 1000:.0f} / {c.agi_p99 * 1000:.0f} ms"
            f" | {(c.ami_p50 - s.ami_p50) * 1000:+.0f} / "
            f"{(c.ami_p99 - s.ami_p99) * 1000:+.0f} ms | {ctl * 1000:.2f} ms | {ast * 1000:.2f} ms | {ctl / ast:.1%} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
