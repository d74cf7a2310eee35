"""A national-scale merger config for benchmarks: 300 cities, 60 province-wide lines and per-city lines.

Every mode is present; per-city sub-centres have a site in every city and each
city has local landline utility lines, so there are 300 × 60 routable
(city, line) pairs and more.
"""

from __future__ import annotations

from typing import Any

import yaml

CITIES = 300
SHORT_LINES = 60
LANDLINES_PER_CITY = 4


def area_code(i: int) -> str:
    """A distinct four-digit area code per city (0310 … 0999)."""
    return f"0{310 + i * 2}"


def national_config(cities: int = CITIES) -> dict[str, Any]:
    """The config as plain data, ready for yaml.safe_dump."""
    city_rows = [{"id": f"c{i:03d}", "name": f"城市{i}", "area_code": area_code(i)} for i in range(cities)]
    modes = ["merge", "parallel", "subcentre", "subcentre", "merge", "parallel", "guidance", "parallel"]
    queues: list[dict[str, Any]] = [{"id": "general", "name": "综合"}, {"id": "complaint", "name": "投诉"}]
    experts: list[dict[str, Any]] = []
    subcentres: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    for n in range(SHORT_LINES - 4):
        number = str(12300 + n) if 12300 + n != 12345 else "96345"
        mode = modes[n % len(modes)]
        line: dict[str, Any] = {"number": number, "name": f"热线{number}", "unit": f"部门{n}", "mode": mode}
        if mode == "merge":
            line["cutover"] = "2021-08-31"
        elif mode == "parallel":
            queues.append({"id": f"l{number}", "name": f"技能{number}", "overflow": "general"})
            line |= {"queue": f"l{number}", "cutover": "2021-11-30"}
            if n % 3 == 0:
                experts.append({"id": f"e{number}", "name": f"专家{number}"})
                line["expert"] = f"e{number}"
        elif mode == "subcentre":
            sub: dict[str, Any] = {"id": f"s{number}", "name": f"分中心{number}"}
            if n % 2:
                sub |= {
                    "scope": "city",
                    "sites": [{"city": c["id"], "dial": f"PJSIP/{number}@{c['id']}"} for c in city_rows],
                }
            else:
                sub |= {"scope": "province", "dial": f"PJSIP/{number}@prov"}
            subcentres.append(sub)
            line |= {"subcentre": sub["id"], "cutover": "2021-07-31"}
        else:
            line["channel"] = "拨打原号码"
        lines.append(line)
    for number in ("110", "119", "120", "122"):
        lines.append({"number": number, "name": f"紧急{number}", "unit": "应急", "mode": "transfer"})
    departments = []
    for i, city in enumerate(city_rows):
        for k in range(LANDLINES_PER_CITY):
            number = f"{2000000 + i * 10 + k}"
            dept = f"d{i:03d}{k}"
            departments.append({"id": dept, "name": f"公用事业{number}", "dial": f"PJSIP/{number}@{city['id']}"})
            lines.append(
                {
                    "number": number,
                    "name": f"公用事业{number}",
                    "unit": "企业",
                    "mode": "linked",
                    "department": dept,
                    "city": city["id"],
                }
            )
    return {
        "region": {"id": "national", "name": "全国", "level": "province"},
        "cities": city_rows,
        "centres": [{"id": "top", "name": "省级12345"}]
        + [{"id": c["id"], "name": f"{c['name']}12345", "city": c["id"]} for c in city_rows],
        "queues": queues,
        "expert_groups": experts,
        "subcentres": subcentres,
        "departments": departments,
        "hotlines": lines,
    }


# A year of public holidays and make-up working days (调休) in the shape of the 2026 announcement.
HOLIDAYS_2026: list[dict[str, Any]] = [
    {"date": "2026-01-01", "until": "2026-01-03", "name": "元旦"},
    {"date": "2026-01-04", "name": "元旦调休", "workday": True},
    {"date": "2026-02-14", "name": "春节调休", "workday": True},
    {"date": "2026-02-15", "until": "2026-02-23", "name": "春节"},
    {"date": "2026-02-28", "name": "春节调休", "workday": True},
    {"date": "2026-04-04", "until": "2026-04-06", "name": "清明节"},
    {"date": "2026-05-01", "until": "2026-05-05", "name": "劳动节"},
    {"date": "2026-05-09", "name": "劳动节调休", "workday": True},
    {"date": "2026-06-19", "until": "2026-06-21", "name": "端午节"},
    {"date": "2026-09-20", "name": "国庆节调休", "workday": True},
    {"date": "2026-09-25", "until": "2026-09-27", "name": "中秋节"},
    {"date": "2026-10-01", "until": "2026-10-07", "name": "国庆节", "message": "welcome"},
    {"date": "2026-10-10", "name": "国庆节调休", "workday": True, "hours_of": "fri"},
]


def with_calendar(config: dict[str, Any], holidays: bool = True) -> dict[str, Any]:
    """``config`` with weekday hours for every department and (``holidays``) a year's holidays and a closure
    for every tenth department."""
    departments = [{**d, "service_hours": "mon-fri 08:30-17:30"} for d in config["departments"]]
    closures = [
        {"date": "2026-07-15", "name": "系统升级", "departments": [d["id"] for d in departments[::10]]},
    ]
    return {**config, "departments": departments, "holidays": HOLIDAYS_2026 + closures if holidays else []}


def national_yaml(cities: int = CITIES, calendar: bool = False, hours_only: bool = False) -> str:
    """The config as YAML text; ``calendar``: with :func:`with_calendar`; ``hours_only``: its weekday hours alone."""
    config = national_config(cities)
    if calendar or hours_only:
        config = with_calendar(config, holidays=calendar)
    return yaml.safe_dump(config, allow_unicode=True, sort_keys=False)


CALLERS: dict[str, Any] = {
    "repeat": {"within_hours": 24, "tag": "重复"},
    "rules": [
        {"id": "listed", "list": "nuisance", "action": {"priority": -1, "queue": "complaint", "tag": "骚扰"}},
        {"id": "frequent", "more_than": 5, "within_minutes": 60, "action": {"priority": -1}},
    ],
}


def callers_yaml(cities: int = CITIES) -> str:
    """The config with a ``callers`` section (a list rule, a count rule, the repeat tag)."""
    return yaml.safe_dump({**national_config(cities), "callers": CALLERS}, allow_unicode=True, sort_keys=False)
