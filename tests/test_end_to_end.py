"""`slf run` end to end through Airflow: the letter's figures come from whatever data is delivered.

The checks are functions taking the run's environment, so test_end_to_end_postgres.py runs the same
ones with SLF_WAREHOUSE_ENGINE=postgres."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pdf_text import page_texts, pdf_text
from slf_warehouse.sample_data import SampleConfig, write_sample_data

pytestmark = pytest.mark.slow
SLF = [sys.executable, "-m", "slf_warehouse.cli"]


SAMPLE_FIGURES = (
    "26 mio. kr.",
    "6,6 mio. kr.",
    "16 læringspartnere",
    "en projektmedarbejder",
    "sektionsleder",
    "80 %",
)
OTHER_CONFIG = SampleConfig(
    seed=7,
    total_allocated_kr=31_500_000,
    apmf_kr=4_200_000,
    learning_partners_latest=12,
    project_employees_latest=2,
    survey_r_squared={2022: 0.70, 2023: 0.65},
)
OTHER_FIGURES = ("31,5 mio. kr.", "4,2 mio. kr.", "12 læringspartnere", "to projektmedarbejdere", "65 %")
OVERRIDE_REASON = "Fejlkontering i marts 2023 rettes i næste periode; godkendt af økonomichefen"


def slf_run(
    landing: Path, out: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SLF, "run", "--landing", str(landing), "--out", str(out), *args],
        capture_output=True,
        text=True,
        env=env or os.environ.copy(),
        timeout=900,
    )


def check_sample_figures(out: Path) -> None:
    """A published run on the sample data: its answers, quality outputs and dbt docs."""
    text = pdf_text(out / "answers" / "enhedslisten-slf.pdf")
    for figure in SAMPLE_FIGURES:
        assert figure in text, figure
    assert (out / "answers" / "enhedslisten-slf.html").exists()
    assert (out / "quality" / "data_docs" / "index.html").exists()
    assert (out / "quality" / "report.pdf").exists()
    assert "slf_warehouse" in (out / "dbt_docs" / "static_index.html").read_text(encoding="utf-8")
    assert (out / "answers" / "konservative-kompetenceaktiviteter.pdf").exists()


def check_rerenders_are_identical(out: Path, env: dict[str, str] | None = None) -> None:
    """Rendering again from the same published warehouse: nothing changed, and from then on the
    same bytes (the first edition's appendix says it is the first; later ones that nothing changed)."""
    pdfs = []
    for _ in range(2):
        again = subprocess.run(
            [*SLF, "answer", "inquiries/enhedslisten-slf.yaml", "--out", str(out)],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
            env=env or os.environ.copy(),
            timeout=300,
        )
        assert again.returncode == 0, again.stderr
        assert "figures changed since the last edition: none" in again.stdout
        pdfs.append((out / "answers" / "enhedslisten-slf.pdf").read_bytes())
    assert pdfs[0] == pdfs[1]


def check_other_figures(out: Path) -> None:
    text = pdf_text(out / "answers" / "enhedslisten-slf.pdf")
    for figure in OTHER_FIGURES:
        assert figure in text, figure
    for stale in ("26 mio. kr.", "6,6 mio. kr.", "16 læringspartnere", "80 %"):
        assert stale not in text, stale


def put_apmf_money_on_salaries(landing: Path) -> int:
    """One SLF salary posting of March 2023 moved to the APMF donation, which may not pay salaries;
    returns its line number as a person counts."""
    month = landing / "posteringer" / "posteringer_2023-03.csv"
    lines = month.read_bytes().decode("cp1252").split("\r\n")
    i = next(i for i, line in enumerate(lines) if ";1.1;" in line and ";SLF;" in line)
    fields = lines[i].split(";")
    fields[8] = "APMF"
    lines[i] = ";".join(fields)
    month.write_bytes("\r\n".join(lines).encode("cp1252"))
    return i + 1


def check_refused_for_apmf(refused: subprocess.CompletedProcess[str], out: Path, line: int) -> None:
    assert refused.returncode != 0
    assert "reconciliation apmf_not_on_salaries" in refused.stderr
    assert f"posteringer_2023-03.csv linje {line}" in refused.stderr
    assert not (out / "answers" / "enhedslisten-slf.pdf").exists()
    report = pdf_text(out / "quality" / "report.pdf")
    assert "apmf_salary_postings" in report and "APMF-posteringer med hovedart 1 (løn)" in report
    assert f"posteringer_2023-03.csv:{line}" in report  # the offending row


def check_published_with_override(overridden: subprocess.CompletedProcess[str], out: Path) -> None:
    assert overridden.returncode == 0, overridden.stdout + overridden.stderr
    check_override_published(out, OVERRIDE_REASON)


def check_override_published(out: Path, reason: str) -> None:
    """Published despite the refusal: the reason on every page of the answer, last in the history."""
    pages = page_texts(out / "answers" / "enhedslisten-slf.pdf")
    assert all(f"Offentliggjort trods fejlede kvalitetskontroller: {reason}" in p for p in pages)
    history = [json.loads(line) for line in (out / "quality" / "history.jsonl").read_text().splitlines()]
    assert history[-1]["status"] == "published" and history[-1]["override_reason"] == reason
    assert any(h["status"] == "refused" for h in history)


def test_sample_data_gives_the_answers_figures(tmp_path: Path) -> None:
    landing, out = tmp_path / "landing", tmp_path / "out"
    subprocess.run([*SLF, "sample-data", "--out", str(landing)], check=True, capture_output=True)
    result = slf_run(landing, out)
    assert result.returncode == 0, result.stdout + result.stderr
    check_sample_figures(out)
    published = json.loads((out / "warehouse" / "published.json").read_text())
    assert (out / "warehouse" / published["path"]).exists()
    check_rerenders_are_identical(out)


def test_other_data_gives_other_figures(tmp_path: Path) -> None:
    landing, out = tmp_path / "landing", tmp_path / "out"
    write_sample_data(landing, OTHER_CONFIG)
    result = slf_run(landing, out)
    assert result.returncode == 0, result.stdout + result.stderr
    check_other_figures(out)


def test_broken_delivery_fails_the_run_and_names_the_fault(tmp_path: Path, sample_landing: Path) -> None:
    bad = Path(__file__).parent / "data" / "bad" / "18-posteringer-bad-amount" / "posteringer"
    shutil.copyfile(
        bad / "posteringer_2023-03.csv", sample_landing / "posteringer" / "posteringer_2023-03.csv"
    )
    out = tmp_path / "out"
    result = slf_run(sample_landing, out)
    assert result.returncode != 0
    assert "posteringer_2023-03.csv, line 7, column beloeb" in result.stderr
    assert "'12,34,56'" in result.stderr
    assert (out / "quarantine" / "posteringer" / "posteringer_2023-03.csv.errors.json").exists()
    assert not (out / "answers" / "enhedslisten-slf.pdf").exists()
    assert not (out / "warehouse" / "published.json").exists()


def test_apmf_money_on_salaries_blocks_publication_until_overridden(
    tmp_path: Path, sample_landing: Path
) -> None:
    line = put_apmf_money_on_salaries(sample_landing)
    out = tmp_path / "out"

    refused = slf_run(sample_landing, out)
    check_refused_for_apmf(refused, out, line)
    assert not (out / "warehouse" / "published.json").exists()

    check_published_with_override(slf_run(sample_landing, out, "--quality-override", OVERRIDE_REASON), out)
