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


def national_yaml(cities: int = CITIES) -> str:
    """The config as YAML text."""
    return yaml.safe_dump(national_config(cities), allow_unicode=True, sort_keys=False)
