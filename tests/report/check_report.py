#!/usr/bin/env python3
"""tests/report/check_report.py — structural checks of graft's SVG plots and
report.html, run by tests/test_report.c at test time.

  check_report.py svg  FILE.svg  EXPECT_JSON
  check_report.py html FILE.html RESULTS.jsonl EXPECT_JSON

svg: parses with xml.etree and compares counts of series paths, markers,
error bars, tick labels, legend entries, title and axis labels with
EXPECT_JSON; checks every coordinate is a finite number inside the canvas.
html: parses with html.parser; requires no <script>, no external resource,
well-formed inline SVGs, and recomputes mean +- sample std per method x
budget from RESULTS.jsonl to compare with the accuracy table.
Exit 0 when all checks pass, 1 with a message per failure otherwise."""
import json
import math
import re
import statistics
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

SVG_NS = "{http://www.w3.org/2000/svg}"
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)


def by_class(root, tag, cls):
    return [e for e in root.iter(SVG_NS + tag) if cls in (e.get("class") or "").split()]


def texts(root, cls):
    return ["".join(e.itertext()) for e in by_class(root, "text", cls)]


def path_numbers(d):
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", d)]


def check_svg_root(root, where, expect=None):
    check(root.tag == SVG_NS + "svg", f"{where}: root is {root.tag}, not svg")
    w, h = float(root.get("width")), float(root.get("height"))
    for el in root.iter():
        for attr in ("x", "y", "cx", "cy"):
            if el.get(attr) is not None:
                v = float(el.get(attr))
                check(math.isfinite(v) and -1 <= v <= max(w, h) + 1, f"{where}: {attr}={v} outside canvas")
        d = el.get("d")
        if d:
            check("nan" not in d.lower() and "inf" not in d.lower(), f"{where}: non-finite path {d[:60]}")
            for v in path_numbers(d):
                check(-1 <= v <= max(w, h) + 1, f"{where}: path coordinate {v} outside canvas")
    if expect is None:
        return
    got = {
        "series_paths": len(by_class(root, "path", "series")),
        "markers": len(by_class(root, "circle", "marker")),
        "errorbars": len(by_class(root, "path", "errorbar")),
        "xticks": texts(root, "xtick"),
        "legend": texts(root, "legend-text"),
        "title": texts(root, "title"),
        "xlabel": texts(root, "xlabel"),
        "ylabel": texts(root, "ylabel"),
        "nodata": len(texts(root, "nodata")) > 0,
        "yticks": len(texts(root, "ytick")),
    }
    for key, want in expect.items():
        if key == "points_per_path":
            pts = [len(re.findall(r"[ML]", p.get("d"))) for p in by_class(root, "path", "series")]
            check(pts == want, f"{where}: points per series path {pts}, want {want}")
        elif key == "min_yticks":
            check(got["yticks"] >= want, f"{where}: {got['yticks']} y tick labels, want >= {want}")
        else:
            check(got[key] == want, f"{where}: {key} = {got[key]!r}, want {want!r}")


class ReportParser(HTMLParser):
    """Collects tags, table cells and inline SVG sources."""

    def __init__(self, source):
        super().__init__(convert_charrefs=True)
        self.source = source
        self.tags, self.tables, self.svgs, self.external = [], [], [], []
        self.row, self.cell, self.table_class = None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        for key in ("src", "href"):
            if key in a and not a[key].startswith("#"):
                self.external.append(f"<{tag} {key}={a[key]}>")
        if tag == "link":
            self.external.append("<link>")
        if tag == "table":
            self.tables.append({"class": a.get("class", ""), "rows": []})
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append("".join(self.cell).strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.tables[-1]["rows"].append(self.row)
            self.row = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def check_html(path, results_path, expect):
    src = open(path, encoding="utf-8").read()
    p = ReportParser(src)
    p.feed(src)
    p.close()
    check(src.startswith("<!DOCTYPE html>"), "html: no doctype")
    check("script" not in p.tags, "html: has a <script>")
    check(not p.external, f"html: external resources {p.external}")
    check(re.search(r"url\(", src) is None, "html: CSS url() reference")
    svgs = re.findall(r"<svg\b.*?</svg>", src, flags=re.S)
    check(len(svgs) == expect["svgs"], f"html: {len(svgs)} inline svgs, want {expect['svgs']}")
    for i, s in enumerate(svgs):
        try:
            check_svg_root(ET.fromstring(s), f"html svg {i}")
        except ET.ParseError as e:
            failures.append(f"html svg {i}: not well-formed: {e}")
    for text in expect.get("contains", []):
        check(text in src, f"html: does not contain {text!r}")
    # recompute the accuracy table from results.jsonl
    runs = [json.loads(line) for line in open(results_path) if line.strip()]
    runs = [r for r in runs if r.get("type") == "run" and r.get("phase", "transfer") == "transfer"]
    methods = list(dict.fromkeys(r["method"] for r in runs))
    budgets = sorted(set(r["budget"] for r in runs))
    acc = [t for t in p.tables if t["class"] == "accuracy"]
    check(len(acc) == 1, f"html: {len(acc)} accuracy tables")
    if not acc:
        return
    rows = acc[0]["rows"]
    check(len(rows) == 1 + len(methods), f"html: accuracy table has {len(rows)} rows, want {1 + len(methods)}")
    check(all(len(r) == 1 + len(budgets) for r in rows), "html: accuracy table rows of unequal width")
    for mi, m in enumerate(methods):
        if mi + 1 >= len(rows):
            break
        row = rows[mi + 1]
        check(row[0] == m, f"html: accuracy row {mi} is {row[0]!r}, want {m!r}")
        for bi, b in enumerate(budgets):
            vals = [r["accuracy"] for r in runs if r["method"] == m and r["budget"] == b]
            want = f"{100 * statistics.mean(vals):.2f}"
            if len(vals) > 1:
                want += f" \u00b1 {100 * statistics.stdev(vals):.2f}"
            check(bi + 1 < len(row) and row[bi + 1] == want, f"html: cell {m} @ {b}: {row[bi + 1]!r}, want {want!r}")


def load_expect(arg):
    return json.loads(arg) if arg.lstrip().startswith("{") else json.load(open(arg))


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "svg":
        try:
            check_svg_root(ET.parse(path).getroot(), path, load_expect(sys.argv[3]))
        except ET.ParseError as e:
            failures.append(f"{path}: not well-formed XML: {e}")
    elif mode == "html":
        check_html(path, sys.argv[3], load_expect(sys.argv[4]))
    else:
        sys.exit(f"unknown mode {mode}")
    for f in failures:
        print("FAIL", f)
    print(f"check_report {mode} {path}: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
