"""The data-quality report of one run: OUT/quality/report.pdf (+ report.html), in the letters' house style.

Sections: the run and the gate's decision; sources received (files and rows loaded, skipped and
rejected, from audit.run_files / the load manifest, with the quarantine's error lines); checks per
suite and every failed check with its examples and offending rows; the reconciliations with both
sides and the difference; the trend over the last runs (failed checks and rows loaded per run, as
inline SVG charts, from history.jsonl and audit.runs).

Read from the warehouse the run wrote (its build file, or the published file after publication),
opened read-only. A copy is kept as reports/<run>.pdf so an earlier run's report can be found.

Never personal data: suites on payroll and survey data (person- or respondent-level) show how many
values failed but no values and no rows; quarantined files show line, column and rule, never the
rejected value; anything that looks like a pseudonym is masked.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from markupsafe import Markup

from slf_warehouse.file_modes import write_private
from slf_warehouse.file_names import slug
from slf_warehouse.quality import history
from slf_warehouse.quality.reconciliations import TITLES, read_reconciliations
from slf_warehouse.quality.suites import is_personal_suite
from slf_warehouse.quality.target import QualityTarget, as_target, insertion_order, table_exists
from slf_warehouse.rendering import charts
from slf_warehouse.rendering import formatting as fmt
from slf_warehouse.rendering.pdf import html_to_pdf
from slf_warehouse.rendering.templates import default_templates_dir, inline_stylesheets, template_environment

TEMPLATE = "quality_report.html.j2"
STYLESHEETS = ("house.css", "quality.css")
REPORT_NAME = "report"
ARCHIVE_DIR = "reports"
KEEP_REPORTS = 30
TREND_RUNS = 12
MAX_ISSUES = 3

# Suites over personal data (suites.is_personal_suite, the one rule): the report names the failed
# check and counts, no values, no rows.
PERSONAL_KEYS = ("medarbejder", "employee", "navn", "name")
_PSEUDONYM = re.compile(r"\b[0-9a-f]{64}\b")

SOURCE_LABELS = {
    "enheder": "Enheder (organisationsregister)",
    "bevillinger": "Bevillinger (budgetsystem)",
    "aktiviteter": "Aktiviteter (kursusadministration)",
    "posteringer": "Posteringer (økonomisystem)",
    "loen": "Løn (lønsystem)",
    "social_kapital": "Social kapital (spørgeskema)",
}
SOURCE_ORDER = tuple(SOURCE_LABELS)
STATUS_TEXT = {
    "running": "i gang",
    "failed": "fejlet (ikke offentliggjort)",
    "refused": "afvist af kvalitetskontrollen (ikke offentliggjort)",
    "passed": "godkendt",
    "passed_with_override": "godkendt trods fejl (undtagelse)",
    "published": "offentliggjort",
}
SHORT_STATUS = {
    "running": "i gang",
    "failed": "fejlet",
    "refused": "afvist",
    "passed": "godkendt",
    "passed_with_override": "undtagelse",
    "published": "offentliggjort",
}


def _mask(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return _PSEUDONYM.sub("(pseudonym udeladt)", text)


def _fmt_number(value: Any, decimals: int = 0) -> str:
    return fmt.format_number(value, decimals)


def _fmt_amount(value: Decimal | None, *, count: bool = False) -> str:
    if value is None:
        return "–"
    return _fmt_number(value, 0 if count else 2)


def _fmt_time(value: Any) -> str:
    if not value:
        return "–"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%d-%m-%Y %H:%M") + " UTC"


_exists = table_exists


# ------------------------------------------------------------------------------------------------
# Sections
# ------------------------------------------------------------------------------------------------


def _run_files(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    if _exists(con, "audit", "run_files"):
        rows = con.execute(
            "SELECT source, file, period, rows, status, errors FROM audit.run_files "
            "WHERE run_id = ? ORDER BY source, file",
            [run_id],
        ).fetchall()
        if rows:
            return [
                dict(zip(("source", "file", "period", "rows", "status", "errors"), r, strict=True))
                for r in rows
            ]
    if _exists(con, "audit", "load_manifest"):
        rows = con.execute(
            "SELECT source, file_name, period, rows, "
            "CASE WHEN status = 'replaced' THEN 'loaded' ELSE status END, error "
            "FROM audit.load_manifest WHERE run_id = ? "
            "ORDER BY source, file_name",
            [run_id],
        ).fetchall()
        return [
            dict(
                zip(
                    ("source", "file", "period", "rows", "status", "errors"),
                    (*r[:-1], 0 if r[-1] is None else len(r[-1].split("\n"))),
                    strict=True,
                )
            )
            for r in rows
        ]
    return []


def _raw_rows(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    out = {}
    for source in SOURCE_ORDER:
        if _exists(con, "raw", source):
            out[source] = con.execute(f"SELECT count(*) FROM raw.{source}").fetchall()[0][0]
    return out


def _quarantine_issues(quarantine_dir: Path | None, source: str, file: str) -> list[str]:
    """Line, column and rule of the first few errors: never the rejected value itself."""
    if quarantine_dir is None:
        return []
    path = Path(quarantine_dir) / source / f"{file}.errors.json"
    if not path.is_file():
        return []
    try:
        errors = json.loads(path.read_text(encoding="utf-8")).get("errors") or []
    except (json.JSONDecodeError, OSError):
        return []
    out = []
    for e in errors[:MAX_ISSUES]:
        where = []
        if e.get("line") is not None:
            where.append(f"linje {e['line']}")
        if e.get("column"):
            where.append(f"kolonne {e['column']}")
        out.append(_mask(((", ".join(where) + ": ") if where else "") + str(e.get("message") or "")))
    if len(errors) > MAX_ISSUES:
        out.append(f"… og {len(errors) - MAX_ISSUES} fejl mere (se karantænens fejlrapport)")
    return out


def _sources(con: duckdb.DuckDBPyConnection, run_id: str, quarantine_dir: Path | None) -> dict[str, Any]:
    files = _run_files(con, run_id)
    in_warehouse = _raw_rows(con)
    rows = []
    for source in SOURCE_ORDER:
        mine = [f for f in files if f["source"] == source]
        loaded = [f for f in mine if f["status"] == "loaded"]
        rejected = [f for f in mine if f["status"] == "rejected"]
        rows.append(
            {
                "source": source,
                "label": SOURCE_LABELS[source],
                "files": len(mine),
                "loaded": len(loaded),
                "skipped": sum(f["status"] == "skipped-duplicate" for f in mine),
                "rejected": len(rejected),
                "rows_loaded": _fmt_number(sum(f["rows"] or 0 for f in loaded)),
                "rows_rejected": _fmt_number(sum(f["rows"] or 0 for f in rejected)),
                "rows_total": _fmt_number(in_warehouse[source]) if source in in_warehouse else "–",
            }
        )
    rejected_files = [
        {
            "source": f["source"],
            "file": f["file"],
            "rows": _fmt_number(f["rows"] or 0),
            "errors": f["errors"] or 0,
            "issues": _quarantine_issues(quarantine_dir, f["source"], f["file"]),
        }
        for f in files
        if f["status"] == "rejected"
    ]
    totals = {
        "files": len(files),
        "loaded": sum(r["loaded"] for r in rows),
        "skipped": sum(r["skipped"] for r in rows),
        "rejected": sum(r["rejected"] for r in rows),
        "rows_loaded": _fmt_number(sum(f["rows"] or 0 for f in files if f["status"] == "loaded")),
        "rows_rejected": _fmt_number(sum(f["rows"] or 0 for f in files if f["status"] == "rejected")),
    }
    return {"rows": rows, "rejected_files": rejected_files, "totals": totals}


def _dbt(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any] | None:
    """dbt's node results for the run (audit.dbt_results): counts per status, the nodes that did not pass."""
    if not _exists(con, "audit", "dbt_results"):
        return None
    rows = con.execute(
        "SELECT unique_id, resource_type, status, execution_time, message, failures "
        "FROM audit.dbt_results WHERE run_id = ? ORDER BY unique_id",
        [run_id],
    ).fetchall()
    if not rows:
        return None
    counts: dict[str, int] = {}
    for r in rows:
        counts[r[2]] = counts.get(r[2], 0) + 1
    problems = [
        {"node": r[0], "type": r[1], "status": r[2], "failures": r[5], "message": _mask(r[4]) if r[4] else ""}
        for r in rows
        if r[2] not in ("success", "pass") and r[1] != "exposure"
    ]  # exposures: no-op
    return {
        "nodes": len(rows),
        "counts": sorted(counts.items()),
        "problems": problems,
        "seconds": _fmt_number(sum(r[3] or 0 for r in rows), 1),
    }


def _check_name(expectation_type: str, column: str | None) -> str:
    name = expectation_type.removeprefix("expect_")
    return f"{name} ({column})" if column else name


def _checks(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any] | None:
    if not _exists(con, "audit", "expectation_results"):
        return None
    rows = con.execute(
        "SELECT suite, expectation_type, column_name, success, severity, unexpected_count, "
        "observed_value, unexpected_examples, unexpected_rows, notes, message "
        f"FROM audit.expectation_results WHERE run_id = ? ORDER BY {insertion_order(con)}",
        [run_id],
    ).fetchall()
    if not rows:
        return None
    suites: dict[str, dict[str, Any]] = {}
    failed = []
    for suite, kind, column, success, severity, count, observed, examples, offending, notes, message in rows:
        s = suites.setdefault(
            suite,
            {
                "name": suite,
                "layer": suite.split("_", 1)[0],
                "checks": 0,
                "passed": 0,
                "failed": 0,
                "warned": 0,
            },
        )
        s["checks"] += 1
        if success:
            s["passed"] += 1
            continue
        s["failed" if severity == "error" else "warned"] += 1
        personal = is_personal_suite(suite)
        example_list = json.loads(examples) if examples else []
        row_list = json.loads(offending) if offending else []
        observed_value = json.loads(observed) if observed else None
        entry = {
            "suite": suite,
            "check": _check_name(kind, column),
            "severity": severity,
            "severity_text": "fejl" if severity == "error" else "advarsel",
            "notes": notes,
            "message": _mask(message) if message else None,
            "count": _fmt_number(count) if count is not None else None,
            "observed": None,
            "examples": [],
            "rows": [],
            "withheld": personal,
        }
        if not personal:
            entry["examples"] = [_mask(e) for e in example_list]
            entry["rows"] = [
                _mask(
                    ", ".join(
                        f"{k}={v}" for k, v in r.items() if not any(p in k.lower() for p in PERSONAL_KEYS)
                    )
                )
                for r in row_list
                if isinstance(r, dict)
            ]
            if observed_value is not None and not isinstance(observed_value, (list, dict)) and count is None:
                entry["observed"] = _mask(observed_value)
        failed.append(entry)
    suite_rows = sorted(suites.values(), key=lambda s: (s["layer"] != "raw", s["name"]))
    for s in suite_rows:
        s["status"] = "fejl" if s["failed"] else ("advarsel" if s["warned"] else "bestået")
    totals = {
        "suites": len(suite_rows),
        "checks": sum(s["checks"] for s in suite_rows),
        "passed": sum(s["passed"] for s in suite_rows),
        "failed": sum(s["failed"] for s in suite_rows),
        "warned": sum(s["warned"] for s in suite_rows),
    }
    failed.sort(key=lambda f: (f["severity"] != "error", f["suite"]))
    return {"suites": suite_rows, "failed": failed, "totals": totals}


def _reconciliations(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for r in read_reconciliations(con, run_id):
        g = groups.setdefault(
            r.check,
            {
                "check": r.check,
                "title": TITLES.get(r.check, r.check),
                "severity_text": "fejl" if r.severity == "error" else "advarsel",
                "rule": r.tolerance_rule,
                "rows": [],
                "failed": 0,
                "left_label": r.left_label,
                "right_label": r.right_label,
            },
        )
        count = r.check == "apmf_not_on_salaries" and r.key == "antal"
        g["rows"].append(
            {
                "key": r.key,
                "left_label": r.left_label,
                "right_label": r.right_label,
                "left": _fmt_amount(r.left_value, count=count),
                "right": _fmt_amount(r.right_value, count=count),
                "difference": _fmt_amount(r.difference, count=count),
                "tolerance": _fmt_amount(r.tolerance, count=count),
                "passed": r.passed,
                "status": "ok" if r.passed else ("fejl" if r.severity == "error" else "advarsel"),
                "detail": _mask(r.detail) if r.detail else "",
            }
        )
        if not r.passed:
            g["failed"] += 1
    for g in groups.values():
        g["summary"] = (
            f"alle {len(g['rows'])} stemmer"
            if not g["failed"]
            else f"{g['failed']} af {len(g['rows'])} stemmer ikke"
        )
        labels = {(row["left_label"], row["right_label"]) for row in g["rows"]}
        g["shared_labels"] = len(labels) == 1
    return list(groups.values())


STATUS_COLOUR = {
    "published": "#003f7f",
    "passed": "#003f7f",
    "passed_with_override": "#b24a00",
    "refused": "#a00000",
    "failed": "#a00000",
    "running": "#7f7f7f",
}


def _nice_int_step(high: float, ticks: int = 4) -> int:
    raw = max(high / ticks, 1.0)
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        step = m * power
        if raw <= step and float(step).is_integer():
            return int(step)
    return int(10 * power)


def trend_chart(title: str, points: list[tuple[str, str, int, str]]) -> Markup:
    """Columns per run (day, time, value, status), coloured by the run's status, integer axis.

    Drawn with the letters' chart primitives (``rendering.charts``: 1:1 in points, DejaVu Sans); the
    <title> carries every value as text, which WeasyPrint writes as the figure's alternate text."""
    width, top, plot_height, small, font = 440.0, 12.0, 80.0, 6.5, 7.0
    high = max([0, *(p[2] for p in points)])
    step = _nice_int_step(high)
    top_value = max(step, math.ceil(high / step) * step)
    ticks = list(range(0, top_value + 1, step))
    labels = [_fmt_number(t) for t in ticks]
    left = max(charts.text_width(t, small) for t in labels) + 8
    right, bottom = width - 4, top + plot_height
    height = bottom + 6 + 2 * font * 1.25 + 4
    slot = (right - left) / max(len(points), 1)
    bar = min(slot * 0.6, 28.0)
    text = charts.svg_text

    def y(v: float) -> float:
        return bottom - v / top_value * plot_height

    body = [text(0, top - 5, "antal", size=small, colour=charts.AXIS_COLOUR)]
    for t, label in zip(ticks, labels, strict=True):
        body.append(charts.svg_line(left, y(t), right, y(t), charts.GRID_COLOUR, 0.5))
        body.append(
            text(left - 4, y(t) + small * 0.35, label, anchor="end", size=small, colour=charts.AXIS_COLOUR)
        )
    for i, (day, time_, value, status) in enumerate(points):
        cx = left + slot * (i + 0.5)
        y1 = y(value)
        colour = STATUS_COLOUR.get(status, charts.BAR_COLOUR)
        body.append(charts.svg_rect(cx - bar / 2, y1, bar, max(bottom - y1, 0.4), colour))
        body.append(text(cx, y1 - 2.5, _fmt_number(value), anchor="middle", size=small))
        body.append(text(cx, bottom + 6 + font, day, anchor="middle", size=font))
        body.append(
            text(cx, bottom + 6 + font * 2.25, time_, anchor="middle", size=font, colour=charts.AXIS_COLOUR)
        )
    body.append(charts.svg_line(left, bottom, right, bottom, charts.AXIS_COLOUR, 0.8))
    alt = (
        f"{title}. "
        + "; ".join(f"{d} {t_} ({SHORT_STATUS.get(s, s)}): {_fmt_number(v)}" for d, t_, v, s in points)
        + "."
    )
    return charts.svg_document(width, height, alt, body)


def _trend(quality_dir: Path, warehouse_path: Path | QualityTarget, run_id: str) -> dict[str, Any]:
    runs = history.read_history(quality_dir, warehouse_path, limit=TREND_RUNS)
    rows, failed_points, loaded_points = [], [], []
    for e in runs:
        stamp = e.get("started_at") or e.get("finished_at") or e.get("recorded_at")
        try:
            when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00")) if stamp else None
        except ValueError:
            when = None
        if when is not None and when.tzinfo is not None:
            when = when.astimezone(UTC).replace(tzinfo=None)
        failed = int(e.get("checks_failed") or 0) + int(e.get("reconciliations_failed") or 0)
        loaded = int(e.get("rows_loaded") or 0)
        status = str(e.get("status") or "?")
        if status == "published" and e.get("override_reason"):
            status = "passed_with_override"
        day = when.strftime("%d.%m.") if when else "?"
        time_ = when.strftime("%H:%M") if when else ""
        failed_points.append((day, time_, failed, status))
        loaded_points.append((day, time_, loaded, status))
        rows.append(
            {
                "run_id": e.get("run_id"),
                "when": _fmt_time(when),
                "status": SHORT_STATUS.get(status, status),
                "failed": failed,
                "warned": e.get("checks_warned") or 0,
                "rows_loaded": _fmt_number(loaded),
                "rows_rejected": _fmt_number(e.get("rows_rejected") or 0),
                "override": bool(e.get("override_reason")),
                "current": e.get("run_id") == run_id,
            }
        )
    charts = {}
    if runs:
        charts["failed"] = trend_chart(
            "Fejlede kontroller og afstemninger (fejlniveau) pr. kørsel", failed_points
        )
        charts["loaded"] = trend_chart("Indlæste rækker pr. kørsel", loaded_points)
    return {"runs": rows, "charts": charts}


# ------------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QualityReport:
    pdf_path: Path
    html_path: Path
    context: dict[str, Any]


def report_context(
    warehouse_path: Path | QualityTarget, quality_dir: Path, run_id: str, quarantine_dir: Path | None = None
) -> dict[str, Any]:
    """Everything the template shows (plain values; the charts are SVG markup)."""
    target, quality_dir = as_target(warehouse_path), Path(quality_dir)
    with target.connect(read_only=True) as con:
        run = None
        if _exists(con, "audit", "runs"):
            found = con.execute(
                "SELECT started_at, finished_at, status, quality_success, override_reason "
                "FROM audit.runs WHERE run_id = ?",
                [run_id],
            ).fetchall()
            if found:
                run = dict(
                    zip(
                        ("started_at", "finished_at", "status", "quality_success", "override_reason"),
                        found[0],
                        strict=True,
                    )
                )
        sources = _sources(con, run_id, quarantine_dir)
        checks = _checks(con, run_id)
        dbt = _dbt(con, run_id)
        reconciliations = _reconciliations(con, run_id)
    status = (run or {}).get("status") or "running"
    override = (run or {}).get("override_reason")
    status_text = STATUS_TEXT.get(status, status)
    if status == "published" and override:
        status_text = "offentliggjort trods fejlede kontroller (undtagelse)"
    failed_recs = sum(1 for g in reconciliations for r in g["rows"] if r["status"] == "fejl")
    warned_recs = sum(1 for g in reconciliations for r in g["rows"] if r["status"] == "advarsel")
    return {
        "run_id": run_id,
        "warehouse_file": target.name,
        "created": datetime.now(UTC),
        "started": _fmt_time((run or {}).get("started_at")),
        "finished": _fmt_time((run or {}).get("finished_at")),
        "status": status,
        "status_text": status_text,
        "override": override,
        "refused": status in ("refused", "failed"),
        "sources": sources,
        "checks": checks,
        "dbt": dbt,
        "reconciliations": reconciliations,
        "failed_reconciliations": failed_recs,
        "warned_reconciliations": warned_recs,
        "trend": _trend(quality_dir, warehouse_path, run_id),
    }


def _prune_archive(archive: Path, keep: int) -> None:
    reports = sorted(archive.glob("*.pdf"), key=lambda p: p.stat().st_mtime)
    for old in reports[:-keep]:
        old.unlink(missing_ok=True)
        old.with_suffix(".html").unlink(missing_ok=True)


def render_quality_report(
    warehouse_path: Path | QualityTarget,
    out_dir: Path,
    run_id: str,
    *,
    quarantine_dir: Path | None = None,
    templates_dir: Path | None = None,
) -> Path:
    """Write out_dir/report.pdf and report.html for the run (and a copy under out_dir/reports/);
    returns the PDF's path. `out_dir` is OUT/quality (history.jsonl is read from there);
    `quarantine_dir` defaults to OUT/quarantine when it exists."""
    return render_quality_report_full(
        warehouse_path, out_dir, run_id, quarantine_dir=quarantine_dir, templates_dir=templates_dir
    ).pdf_path


def render_quality_report_full(
    warehouse_path: Path | QualityTarget,
    out_dir: Path,
    run_id: str,
    *,
    quarantine_dir: Path | None = None,
    templates_dir: Path | None = None,
) -> QualityReport:
    warehouse_path, out_dir = as_target(warehouse_path), Path(out_dir)
    if not warehouse_path.exists():
        raise FileNotFoundError(f"no warehouse at {warehouse_path.describe()}")
    templates_dir = Path(templates_dir) if templates_dir else default_templates_dir()
    if quarantine_dir is None and (out_dir.parent / "quarantine").is_dir():
        quarantine_dir = out_dir.parent / "quarantine"
    context = report_context(warehouse_path, out_dir, run_id, quarantine_dir)
    html = (
        template_environment(templates_dir)
        .get_template(TEMPLATE)
        .render(
            css=inline_stylesheets(templates_dir, STYLESHEETS),
            created_text=context["created"].strftime("%d-%m-%Y %H:%M UTC"),
            **context,
        )
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, pdf_path = out_dir / f"{REPORT_NAME}.html", out_dir / f"{REPORT_NAME}.pdf"
    pdf = html_to_pdf(html, templates_dir)
    write_private(html_path, html)
    write_private(pdf_path, pdf)
    archive = out_dir / ARCHIVE_DIR
    archive.mkdir(exist_ok=True)
    write_private(archive / f"{slug(run_id)}.pdf", pdf)
    _prune_archive(archive, KEEP_REPORTS)
    return QualityReport(pdf_path, html_path, context)
