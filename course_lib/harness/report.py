"""The evidence table: every claim of every executed lesson, collected from build/results/*.json into
build/report.md and build/html/index.html."""
from __future__ import annotations

import datetime as dt
import html
import json
import platform
from pathlib import Path

from ..core import paths


def load_results(results_dir: Path | None = None) -> list[dict]:
    results_dir = results_dir or paths.results_dir()
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(results_dir.glob("*.json"))]


class MixedRuns(ValueError):
    """Results from more than one profile or seed, where one table must come from one run's settings."""


def mixed_runs(results: list[dict]) -> str | None:
    """None when every result has the same profile and seed, else a message naming which lesson has which."""
    groups: dict[tuple, list[str]] = {}
    for r in results:
        groups.setdefault((r["profile"], r.get("seed")), []).append(r["notebook"][:2])
    if len(groups) <= 1:
        return None
    parts = [f"{' '.join(lessons)} at profile {profile}, seed {'unknown' if seed is None else seed}"
             for (profile, seed), lessons in sorted(groups.items(), key=lambda kv: kv[1])]
    return ("the results mix runs (" + "; ".join(parts) + "): numbers from different profiles or seeds "
            "do not belong in one table. Rerun the odd ones with the same settings (make course PROFILE=.. "
            "SEED=.. LESSONS=\"..\"), or keep runs apart with COURSE_BUILD_DIR=another/folder.")


def check_one_run(results: list[dict]) -> list[dict]:
    """`results`, or MixedRuns when they mix profiles or seeds (see mixed_runs)."""
    message = mixed_runs(results)
    if message:
        raise MixedRuns(message)
    return results


def _metrics_text(metrics: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in metrics.items())


def rows(results: list[dict]) -> list[dict]:
    out = []
    for r in results:
        for c in r["claims"]:
            out.append({"lesson": r["notebook"], "claim": c["name"], "numbers": _metrics_text(c["metrics"]),
                        "result": "pass" if c["passed"] else ("FAIL" if c["required"] else "fail (not required)"),
                        "required": c.get("required_at", ""), "seconds": r["seconds"], "profile": r["profile"],
                        "device": r["device"]})
    return out


def to_markdown(results: list[dict], profile: str | None = None) -> str:
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    devices = sorted({r["device"] for r in results}) or ["-"]
    profiles = sorted({r["profile"] for r in results}) or [profile or "-"]
    seeds = sorted({str(r["seed"]) for r in results if r.get("seed") is not None}) or ["-"]
    head = ["# Evidence table", "",
            f"Generated {stamp} on {platform.node() or 'this machine'} ({platform.machine()}), "
            f"device {', '.join(devices)}, profile {', '.join(profiles)}, seed {', '.join(seeds)}.", "",
            "| lesson | claim | numbers | result | required at | notebook seconds |",
            "|---|---|---|---|---|---|"]
    body = [f"| {r['lesson']} | {r['claim']} | {r['numbers']} | {r['result']} | {r['required']} | {r['seconds']} |"
            for r in rows(results)]
    times = ["", "| notebook | profile | seconds | claims passed |", "|---|---|---|---|"]
    for r in results:
        n_pass = sum(c["passed"] for c in r["claims"])
        times.append(f"| {r['notebook']} | {r['profile']} | {r['seconds']} | {n_pass}/{len(r['claims'])} |")
    return "\n".join(head + body + times) + "\n"


def to_html(results: list[dict]) -> str:
    links = "".join(f'<li><a href="{html.escape(r["notebook"])}.html">{html.escape(r["notebook"])}</a> '
                    f'({r["profile"]}, {r["seconds"]} s)</li>' for r in results)
    trs = "".join(
        "<tr class='{cls}'><td>{lesson}</td><td>{claim}</td><td>{numbers}</td><td>{result}</td><td>{required}</td>"
        "<td>{seconds}</td></tr>".format(cls="ok" if r["result"] == "pass" else "bad",
                                          **{k: html.escape(str(v)) for k, v in r.items()})
        for r in rows(results))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Course evidence</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #ccc;padding:4px 8px;font-size:14px}}
table{{border-collapse:collapse}}tr.ok td:nth-child(4){{color:#080}}tr.bad td:nth-child(4){{color:#b00}}</style>
</head><body><h1>From RNNs to RLHF: the evidence</h1><h2>Executed lessons</h2><ul>{links}</ul>
<h2>Claims</h2><table><tr><th>lesson</th><th>claim</th><th>numbers</th><th>result</th><th>required at</th>
<th>notebook seconds</th></tr>{trs}</table></body></html>"""


def write_report(results_dir: Path | None = None, profile: str | None = None, seed: int | None = None) -> Path:
    """The evidence table of the results at `profile` and `seed` (when given; results of other runs are left out),
    refusing a mix (MixedRuns)."""
    results = [r for r in load_results(results_dir) if (profile is None or r["profile"] == profile)
               and (seed is None or r.get("seed") == seed)]
    check_one_run(results)
    build = paths.build_dir()
    md = build / "report.md"
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(to_markdown(results, profile), encoding="utf-8")
    (build / "html").mkdir(parents=True, exist_ok=True)
    (build / "html" / "index.html").write_text(to_html(results), encoding="utf-8")
    return md


if __name__ == "__main__":
    print(write_report())
