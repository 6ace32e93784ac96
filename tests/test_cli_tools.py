"""`slf run`'s progress and summary, and the answer writers' tools, on a real refresh of the sample.

One real `slf run` (through Airflow) publishes the warehouse the module's tests read; a second run
of the same delivery is the `--json` case (every file unchanged).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SLF = [sys.executable, "-m", "slf_warehouse.cli"]
STEP_LINE = re.compile(r"^  [a-z_ ]+? +(started|done|FAILED|skipped)(  \d+\.\d s)?$")


def slf(*args: str, cwd: Path | None = None, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SLF, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory: pytest.TempPathFactory, sample_landing_master: Path):
    out = tmp_path_factory.mktemp("cli-tools") / "out"
    run = slf("run", "--landing", str(sample_landing_master), "--out", str(out), timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out, run


def _history(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "quality" / "history.jsonl").read_text().splitlines()]


def test_run_shows_each_step_and_a_summary_and_no_library_lines(
    refreshed, sample_landing_master: Path
) -> None:
    out, run = refreshed
    err = run.stderr.splitlines()
    assert err[0].startswith("slf run: refreshing from ")
    # Nothing but step lines: no Great Expectations, WeasyPrint, dbt or Airflow log line.
    assert all(STEP_LINE.match(line) for line in err[1:]), [
        line for line in err[1:] if not STEP_LINE.match(line)
    ]
    for step in (
        "prepare build",
        "ingest posteringer",
        "ingest loen",
        "dbt build",
        "quality checks",
        "publish",
        "answers",
    ):
        assert any(re.match(rf"^  {step} +started$", line) for line in err), step
        assert any(re.match(rf"^  {step} +done  \d+\.\d s$", line) for line in err), step
    log = (out / "logs" / "slf_refresh.log").read_text(encoding="utf-8")
    assert (
        "Skipping registering function" in log and "Step 2 - Fetching and parsing CSS" in log
    )  # kept, in the log

    entry = _history(out)[-1]
    summary = run.stdout
    assert "Refresh succeeded: published, in " in summary and entry["run_id"] in summary
    for source in ("enheder", "bevillinger", "posteringer", "loen", "social_kapital", "aktiviteter"):
        files = len([f for f in (sample_landing_master / source).iterdir() if f.is_file()])
        assert re.search(rf"^  {source} +{files} +0 +0 +\d+$", summary, re.MULTILINE), source
    assert re.search(
        rf"^  all +{entry['files_loaded']} +0 +0 +{entry['rows_loaded']}$", summary, re.MULTILINE
    )
    results = json.loads(next((out / "quality" / "dbt_run_results").glob("*/run_results*.json")).read_text())
    tests = sum(1 for r in results["results"] if r["unique_id"].startswith("test.") and r["status"] == "pass")
    assert f"tests: {tests} passed" in summary
    assert (
        f"quality    {entry['checks']} checks: 0 failed, 0 warned; {entry['reconciliations']} "
        f"reconciliations: 0 failed"
    ) in summary
    published = json.loads((out / "warehouse" / "published.json").read_text())
    assert f"published  {published['version']}" in summary
    for pdf in ("enhedslisten-slf.pdf", "konservative-kompetenceaktiviteter.pdf"):
        assert str(out / "answers" / pdf) in summary and (out / "answers" / pdf).exists()


def test_answer_by_name_with_or_without_yaml_from_any_folder(refreshed, tmp_path: Path) -> None:
    out, _ = refreshed
    for name in ("enhedslisten-slf", "enhedslisten-slf.yaml"):
        done = slf("answer", name, "--out", str(out), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[0] == str(out / "answers" / "enhedslisten-slf.pdf")
        assert "Traceback" not in done.stderr and not done.stderr.strip(), (
            done.stderr
        )  # quiet: no library lines
    assert "Step 2 - Fetching" in (out / "logs" / "slf_answer.log").read_text(encoding="utf-8")
    verbose = slf("answer", "enhedslisten-slf", "--out", str(out), "-v")
    assert verbose.returncode == 0 and "Step 2 - Fetching and parsing CSS" in verbose.stderr  # -v: shown live


def test_figures_lists_an_inquirys_figures_with_the_letters_values(refreshed) -> None:
    out, _ = refreshed
    sidecar = json.loads((out / "answers" / "enhedslisten-slf.figures.json").read_text())["figures"]
    done = slf("figures", "--out", str(out), "--inquiry", "enhedslisten-slf", "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert {f["name"] for f in listed["figures"]} == set(sidecar)
    for f in listed["figures"]:
        assert f["value"] == sidecar[f["name"]]["text"], f["name"]
        assert f["label"] == sidecar[f["name"]]["label"] and f["definition"]
    assert listed["window"] == ["2022-01-01", "2024-06-30"]
    text = slf("figures", "--out", str(out)).stdout
    assert "activity_participants_by_type  (Deltagere pr. aktivitetstype; table, unit count)" in text
    assert text.count("    today: ") == 25


def test_status_names_the_published_version_and_the_last_runs(refreshed) -> None:
    out, _ = refreshed
    published = json.loads((out / "warehouse" / "published.json").read_text())
    done = slf("status", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"Published: version {published['version']}" in done.stdout
    assert f"  run        {published['run_id']}" in done.stdout
    assert "  quality    passed: " in done.stdout and "  sources    65 files: " in done.stdout
    assert re.search(rf"published +{re.escape(published['run_id'])}$", done.stdout, re.MULTILINE)


def test_new_inquiry_edit_check_answer(refreshed, tmp_path: Path) -> None:
    out, _ = refreshed
    made = slf("inquiry", "new", "venstre-slf", "--dir", str(tmp_path))
    assert made.returncode == 0, made.stderr
    path = tmp_path / "venstre-slf.yaml"
    assert slf("inquiry", "check", str(path)).returncode == 0  # the template as written is valid

    text = path.read_text(encoding="utf-8")
    text = text.replace("party: Partinavn", "party: Venstre").replace("status: udkast", "status: endelig")
    text = re.sub(r"start: \d{4}-01-01", "start: 2022-01-01", text)
    text = re.sub(r"end: \d{4}-12-31", "end: 2024-06-30", text)
    text = text.replace("name: Fornavn Efternavn", "name: Thomas Medom")
    broken = text.replace("{{ allocated_total }}", "{{ allocated_totl }}").replace("number: 2", "number: 3")
    path.write_text(broken, encoding="utf-8")
    checked = slf("inquiry", "check", str(path))
    assert checked.returncode == 1 and "Traceback" not in checked.stderr
    assert "numbered 1, 2, 3" in checked.stderr

    path.write_text(text, encoding="utf-8")
    checked = slf("inquiry", "check", str(path))
    assert checked.returncode == 0, checked.stderr
    answered = slf("answer", str(path), "--out", str(out), "--to", str(tmp_path / "letters"))
    assert answered.returncode == 0, answered.stderr
    pdf = tmp_path / "letters" / "venstre-slf.pdf"
    words = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    sidecar = json.loads((tmp_path / "letters" / "venstre-slf.figures.json").read_text())["figures"]
    flat = re.sub(r"\s+", " ", words.replace("\u00a0", " "))
    assert "Venstre" in flat and sidecar["allocated_total"]["text"] in flat
    assert "Udgifter pr. aktivitetstype" in flat  # the table under question 2


def test_second_run_json_every_file_unchanged(refreshed, sample_landing_master: Path) -> None:
    out, _ = refreshed
    run = slf("run", "--landing", str(sample_landing_master), "--out", str(out), "--json", timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not run.stderr.strip(), run.stderr
    result = json.loads(run.stdout)
    assert result["state"] == "success" and result["not_succeeded"] == []
    assert {t["task_id"] for t in result["tasks"]} >= {"prepare_build", "publish", "render_answers"}
    sources = result["summary"]["sources"]
    assert set(sources) == {"enheder", "bevillinger", "posteringer", "loen", "social_kapital", "aktiviteter"}
    for source, counts in sources.items():
        files = len([f for f in (sample_landing_master / source).iterdir() if f.is_file()])
        assert counts == {"loaded": 0, "unchanged": files, "rejected": 0, "rows": 0}, source
    assert (
        result["summary"]["published_version"]
        == json.loads((out / "warehouse" / "published.json").read_text())["version"]
    )
