"""`churnstream replay --report`: the HTML file parses as a well-formed document.

Runs the real binary ($CS_BIN, set by tests/run-all.sh) on a small synthetic CSV, then walks
the file with Python's html.parser, checking that every element is closed in order (void
elements aside), that nothing would be fetched from the network, and that two runs give the
same bytes. Skipped, with the reason, when $CS_BIN is unset or not an executable.
"""
import os
import re
import subprocess
from html.parser import HTMLParser

import pytest

CS_BIN = os.environ.get("CS_BIN", "")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
MAP = "user_id=user,event_time=ts:%Y-%m-%d %H:%M:%S,event_type=type,amount=amount"

pytestmark = pytest.mark.skipif(
    not (CS_BIN and os.path.isfile(CS_BIN) and os.access(CS_BIN, os.X_OK)),
    reason="CS_BIN is not set to the churnstream binary (tests/run-all.sh sets it)")


class Checker(HTMLParser):
    """Tag-balance checker: html.parser itself never rejects anything."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.tags, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append((tag, self.getpos()))

    def handle_startendtag(self, tag, attrs):  # <line .../> inside SVG
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag in VOID:
            self.errors.append(f"end tag for void element {tag} at {self.getpos()}")
        elif not self.stack or self.stack[-1][0] != tag:
            self.errors.append(f"</{tag}> at {self.getpos()} closes {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def write_csv(path):
    """Two churners, two loyal users, one late joiner, weekly ticks over ~4 months."""
    lines = ["user,ts,type,amount"]
    for day in range(0, 120, 3):
        d = f"2024-{1 + day // 30:02d}-{1 + day % 30:02d} 10:00:00"
        lines.append(f"loyal1,{d},purchase,10")
        lines.append(f"loyal2,{d},page_view,0")
        if day < 40:
            lines.append(f"churn1,{d},session_start,0")
        if day < 55:
            lines.append(f"churn2,{d},purchase,5")
        if day > 60:
            lines.append(f"late,{d},page_view,0")
    path.write_text("\n".join(lines) + "\n")


def run_report(tmp_path, csv, name):
    out = tmp_path / name
    res = subprocess.run(
        [CS_BIN, "replay", "--map", MAP, "--tick.interval=7d", "--label.horizon=14d",
         "--label.lookback=14d", "--quiet", "--report", str(out), str(csv)],
        capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return out.read_text(encoding="utf-8")


def test_report_is_well_formed_and_offline(tmp_path):
    csv = tmp_path / "ev.csv"
    write_csv(csv)
    html = run_report(tmp_path, csv, "r.html")
    assert html.startswith("<!DOCTYPE html>")
    p = Checker()
    p.feed(html)
    p.close()
    assert p.errors == []
    assert p.stack == [], f"unclosed: {p.stack}"
    names = [t for t, _ in p.tags]
    assert names.count("svg") >= 5
    for tag, attrs in p.tags:
        assert tag not in ("script", "img", "link", "iframe", "object"), tag
        assert "src" not in attrs, (tag, attrs)
        href = attrs.get("href")
        assert href is None or href.startswith("#"), href
    assert not re.search(r"https?://|url\(|@import", html)
    text = " ".join(p.text)
    for title in ("ROC curve", "Calibration", "AUC and log-loss over time",
                  "Segments over time", "Alerts per tick", "Weights by feature"):
        assert title in text
    assert re.search(r"\d+ alerts: high \d+, medium \d+, low \d+; treatment \d+, holdout \d+", text)
    assert "There were no labelled snapshots" not in text  # the input must yield charts
    assert re.search(r"\d+ labelled snapshots \(\d+ churned\) over \d+ ticks", text)
    # Every in-page link points at an element that exists.
    ids = {a["id"] for _, a in p.tags if "id" in a}
    for _, a in p.tags:
        if a.get("href", "").startswith("#"):
            assert a["href"][1:] in ids


def test_report_is_deterministic(tmp_path):
    csv = tmp_path / "ev.csv"
    write_csv(csv)
    assert run_report(tmp_path, csv, "a.html") == run_report(tmp_path, csv, "b.html")
