"""The day the main job replays: inside the merger file's transition, picked from its own cut-over dates.

Pure (a merger config in, a date out), so the choice is the same on every machine and testable.
"""

from __future__ import annotations

import datetime as dt

from hotline_cti.config.compile import transition_window
from hotline_cti.config.schema import MergerConfig

SETTLE = dt.timedelta(weeks=2)  # after a cut-over, long enough for callers to have met the new routing
MIDWEEK = (1, 2, 3)  # Tuesday-Thursday: an ordinary working day, not a Monday peak or a weekend


def transition_day(model: MergerConfig) -> dt.date | None:
    """Two weeks after the last cut-over that falls inside a transition window, moved on to a Tuesday-Thursday.

    For Guangxi: the 整体并入 lines' window runs 2021-08-31 .. 2022-02-28 and the 双号并行 lines cut over on
    2021-11-30, inside it, so the day is 2021-12-14: the merged numbers still play their transition prompt
    (76 days left), the parallel lines and the sub-centres are already cut over. When that day would leave
    every window, the middle of the longest window is taken; None when the file has no window at all.
    """
    windows = [w for w in (transition_window(h, model.defaults.transition_months) for h in model.hotlines) if w]
    if not windows:
        return None

    def inside(day: dt.date) -> bool:
        return any(start <= day < end for start, end in windows)

    cutovers = sorted({h.cutover for h in model.hotlines if h.cutover is not None and inside(h.cutover)})
    day = cutovers[-1] + SETTLE if cutovers else windows[0][0] + SETTLE
    while day.weekday() not in MIDWEEK:
        day += dt.timedelta(days=1)
    if inside(day):
        return day
    start, end = max(windows, key=lambda w: (w[1] - w[0], w[0]))
    day = start + (end - start) / 2
    while day.weekday() not in MIDWEEK and day + dt.timedelta(days=1) < end:
        day += dt.timedelta(days=1)
    return day
