"""The replay report's sections for the people who act on the alerts (issue 14, parts 4 and
6): "For the people who act on it" (gains chart, revenue at risk by segment, contacts per
week by action) and "Did the alerts work?" (retained shares and uplift), before the data
science sections, and their numbers held against the replay's own --json summary.

Runs the real binary ($CS_BIN) on a generated log; skipped when $CS_BIN is unset.
"""
import json
import os
import re
import subprocess

import pytest

CS_BIN = os.environ.get("CS_BIN", "")
pytestmark = pytest.mark.skipif(
    not (CS_BIN and os.path.isfile(CS_BIN) and os.access(CS_BIN, os.X_OK)),
    reason="CS_BIN is not set to the churnstream binary (tests/run-all.sh sets it)")


def table_after(html, heading):
    """Rows (lists of cell texts) of the first <table> after the h3 `heading`."""
    i = html.index(heading)
    t = html[html.index("<table>", i):html.index("</table>", i)]
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", t, re.S):
        cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td>(.*?)</td>", tr, re.S)]
        if cells:
            rows.append(cells)
    return rows


def test_business_and_outcome_sections(tmp_path):
    log = tmp_path / "g.avro"
    subprocess.run([CS_BIN, "gen", "--users", "600", "--days", "200", "--seed", "3", "--out",
                    str(log), "--quiet"], check=True, capture_output=True, timeout=120)
    out = subprocess.run([CS_BIN, "replay", "--json", "--model.min_examples=300",
                          "--alert.holdout_percent=30", "--report", str(tmp_path / "r.html"),
                          str(log)], check=True, capture_output=True, text=True, timeout=300)
    s = json.loads(out.stdout)
    html = (tmp_path / "r.html").read_text()
    assert s["alerts"]["total"] > 50, s["alerts"]

    # People first, then the data science.
    order = [html.index(x) for x in ('id="business"', 'id="outcomes"', 'id="data-science"',
                                     'id="roc"')]
    assert order == sorted(order), order
    assert "Gains chart" in html and re.search(r"reaches \d+% of the churners", html)

    # Revenue at risk: one row per alerted segment, alerts summing to every alert.
    rev = table_after(html, "Revenue at risk by segment")
    assert sum(int(r[1]) for r in rev) == s["alerts"]["total"]

    # Contacts: treatment-arm alerts only, by action.
    con = table_after(html, "Contacts per week by action")
    assert sum(int(r[1]) for r in con) == s["alerts"]["treatment"]
    assert len({r[0] for r in con}) == len(con), "an action listed twice"

    # Did the alerts work? The all-alerts row matches the JSON's outcomes.
    o = s["outcomes"]
    assert o["interval"] == "wald95" and o["window_days"] == 30
    allrow = o["by_all"][0]
    t, h = allrow["treatment"], allrow["holdout"]
    decided = t["alerted"] + h["alerted"] + t["censored"] + h["censored"]
    assert decided + t["repeats"] + h["repeats"] == s["alerts"]["total"]
    row = table_after(html, "All alerts")[0]
    assert row[0] == "all" and int(row[1]) == t["alerted"] and int(row[3]) == h["alerted"]
    # Each dimension partitions the same outcomes.
    for dim in ("by_kind", "by_action", "by_segment"):
        assert sum(r["treatment"]["alerted"] for r in o[dim]) == t["alerted"], dim
        assert sum(r["holdout"]["retained"] for r in o[dim]) == h["retained"], dim
    # The interval is the Wald interval of the two shares.
    p1, p0 = t["retained"] / t["alerted"], h["retained"] / h["alerted"]
    se = (p1 * (1 - p1) / t["alerted"] + p0 * (1 - p0) / h["alerted"]) ** 0.5
    assert abs(allrow["uplift"] - (p1 - p0)) < 1e-5
    assert abs(allrow["uplift_lo"] - (p1 - p0 - 1.959964 * se)) < 1e-5
