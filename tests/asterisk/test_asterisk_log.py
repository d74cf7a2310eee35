"""log_problems: which lines of Asterisk's log fail a clean-log check (no Asterisk needed)."""

from __future__ import annotations

from simulators.asterisk import log_problems

HIGH_WATER = (
    "[2026-12-06 08:24:41.102] WARNING[21050] taskprocessor.c: Taskprocessor 'stasis/m:devicestate:all-00000006' "
    "queue reached 500 scheduled tasks (high water mark: 500)."
)


def test_warnings_and_errors_are_problems_but_asterisks_high_water_notice() -> None:
    again = (
        "[2026-12-06 08:24:42.001] WARNING[21051][C-0000000a] taskprocessor.c: Taskprocessor "
        "'stasis/m:manager:core-00000006' queue reached 3000 scheduled tasks (high water mark: 3000) again."
    )
    ours = "[2026-12-06 08:24:43.000] WARNING[21052][C-0000000b] pbx.c: Channel 'PJSIP/pstn-1' sent to invalid ext"
    error = "[2026-12-06 08:24:43.500] ERROR[21052] res_agi.c: Unable to connect to 'agi://127.0.0.1:4573/route'"
    text = "\n".join(
        [
            "[2026-12-06 08:24:40.724] Asterisk 22.10.1 built by nobody",
            "[2026-12-06 08:24:40.747] NOTICE[21048] loader.c: 96 modules will be loaded.",
            HIGH_WATER,
            again,
            ours,
            error,
        ]
    )
    assert log_problems(text) == [ours, error]


def test_only_the_notice_word_for_word_is_let_through() -> None:
    as_error = HIGH_WATER.replace("] WARNING[", "] ERROR[")
    more = HIGH_WATER + " Channel PJSIP/pstn-1 lost"
    other = HIGH_WATER.replace("taskprocessor.c:", "app_queue.c:")
    assert log_problems("\n".join([as_error, more, other])) == [as_error, more, other]
