"""Every user mistake `slf` can meet gets one sentence, a documented exit code and no traceback.

Each case runs the real command in a subprocess, as a user would; none of them needs a refresh
(the ones that need a published warehouse are in test_cli_tools.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

SLF = [sys.executable, "-m", "slf_warehouse.cli"]
PROJECT = Path(__file__).resolve().parents[1]


def slf(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SLF, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=env if env is not None else os.environ.copy(),
        cwd=cwd,
    )


def one_sentence(result: subprocess.CompletedProcess[str], code: int, *expected: str) -> str:
    """The command failed with ``code`` and said so in one line naming ``expected``, no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def test_help_documents_the_exit_codes() -> None:
    for args in ([], ["run"], ["answer"], ["inquiry"]):
        text = slf(*args, "--help").stdout
        for line in (
            "0  done",
            "1  data rejected",
            "2  a usage or configuration mistake",
            "3  another refresh",
        ):
            assert line in text, (args, line)
    assert "SLF_PSEUDONYM_KEY" in slf("run", "--help").stdout


def test_misspelt_inquiry_names_the_close_one(tmp_path: Path) -> None:
    for name in ("enhedslisten", "enhedslisten-slv", "enhedslisten-slv.yaml"):
        result = slf("answer", name, "--out", str(tmp_path / "out"), cwd=tmp_path)
        one_sentence(
            result,
            2,
            "no such inquiry file",
            "did you mean 'enhedslisten-slf'?",
            "enhedslisten-slf.yaml, konservative-kompetenceaktiviteter.yaml",
        )


@pytest.mark.parametrize("name", ["enhedslisten-slf", "enhedslisten-slf.yaml"])
def test_inquiry_by_name_from_any_folder_reaches_the_warehouse_check(tmp_path: Path, name: str) -> None:
    """A name in inquiries/, with or without .yaml, is found wherever the command runs (here: no
    warehouse is published yet, which is the next thing it says)."""
    result = slf("answer", name, "--out", str(tmp_path / "out"), cwd=tmp_path)
    one_sentence(result, 2, "no warehouse has been published", "run a refresh first")


def test_missing_key_is_refused_before_airflow_starts(tmp_path: Path, sample_landing: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SLF_PSEUDONYM_KEY"}
    started = time.monotonic()
    result = slf("run", "--landing", str(sample_landing), "--out", str(tmp_path / "out"), env=env)
    one_sentence(result, 2, "SLF_PSEUDONYM_KEY is not set", ".slf-pseudonym-key")
    assert time.monotonic() - started < 15  # Airflow's start-up alone takes longer
    assert not (tmp_path / "out").exists()
    short = slf(
        "run",
        "--landing",
        str(sample_landing),
        "--out",
        str(tmp_path / "out"),
        env={**env, "SLF_PSEUDONYM_KEY": "short"},
    )
    one_sentence(short, 2, "SLF_PSEUDONYM_KEY is shorter than 16 characters")


def test_landing_that_does_not_exist_or_has_no_source_folders(tmp_path: Path) -> None:
    missing = slf("run", "--landing", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    one_sentence(missing, 2, f"landing folder {tmp_path / 'nowhere'} does not exist", "slf sample-data")
    (tmp_path / "downloads" / "misc").mkdir(parents=True)
    wrong = slf("run", "--landing", str(tmp_path / "downloads"), "--out", str(tmp_path / "out"))
    one_sentence(wrong, 2, "has none of the source folders", "posteringer")
    ingest = slf(
        "ingest", "--landing", str(tmp_path / "downloads"), "--warehouse", str(tmp_path / "w.duckdb")
    )
    one_sentence(ingest, 2, "has none of the source folders")


def test_output_folder_that_is_not_writable(tmp_path: Path, sample_landing: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = slf("run", "--landing", str(sample_landing), "--out", str(blocker / "out"))
    one_sentence(result, 2, f"output folder {blocker / 'out'} is not writable", "--out")
    answer = slf("answer", "enhedslisten-slf", "--out", str(blocker / "out"))
    one_sentence(answer, 2, "answer folder", "is not writable")


def test_other_usage_mistakes(tmp_path: Path) -> None:
    one_sentence(slf("status", "--out", str(tmp_path / "none")), 2, "does not exist")
    one_sentence(
        slf("figures", "--out", str(tmp_path), "--from", "1. januar"), 2, "--from/--to", "YYYY-MM-DD"
    )
    one_sentence(
        slf("figures", "--out", str(tmp_path), "--inquiry", "enhedslist"),
        2,
        "did you mean 'enhedslisten-slf'?",
    )
    one_sentence(
        slf("inquiry", "new", "Min Forespørgsel", "--dir", str(tmp_path)), 2, "not a usable inquiry name"
    )
    assert slf("inquiry", "new", "venstre-slf", "--dir", str(tmp_path)).returncode == 0
    one_sentence(slf("inquiry", "new", "venstre-slf", "--dir", str(tmp_path)), 2, "exists already")


# What a usage mistake must not wait for: DuckDB, the inquiry model (pydantic, Jinja2, holidays), the
# ingestion (about 0,3 s together, against 0,05 s for Python and argparse).
HEAVY = ("duckdb", "pydantic", "jinja2", "holidays", "slf_warehouse.ingest", "slf_warehouse.answers.inquiry")


def test_usage_mistakes_are_reported_before_the_heavy_imports(tmp_path: Path) -> None:
    """Mistakes in the command or in a file that can be seen without the libraries are reported
    before they are imported."""
    code = (
        "import sys\n"
        "from slf_warehouse.cli import main\n"
        "code = main(sys.argv[1:])\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        "sys.exit(code)\n"
    )
    (tmp_path / "downloads" / "misc").mkdir(parents=True)
    (tmp_path / "not-yaml.yaml").write_text("party: Venstre\nsubject: [SLF\n", encoding="utf-8")
    (tmp_path / "not-utf8.yaml").write_bytes("party: Venstre\nsubject: Sk\u00e6rt\n".encode("cp1252"))
    no_key = {k: v for k, v in os.environ.items() if k != "SLF_PSEUDONYM_KEY"}
    cases = [
        (["run", "--landing", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")], None, 2),
        (["run", "--landing", str(tmp_path / "downloads"), "--out", str(tmp_path / "out")], no_key, 2),
        (
            ["ingest", "--landing", str(tmp_path / "downloads"), "--warehouse", str(tmp_path / "w.duckdb")],
            None,
            2,
        ),
        (["answer", "enhedslisten", "--out", str(tmp_path / "out")], None, 2),
        (["figures", "--out", str(tmp_path), "--from", "1. januar"], None, 2),
        (["figures", "--out", str(tmp_path), "--inquiry", "enhedslist"], None, 2),
        (["inquiry", "check", str(tmp_path / "not-yaml.yaml")], None, 1),
        (["inquiry", "check", str(tmp_path / "not-utf8.yaml")], None, 1),
    ]
    for args, env, exit_code in cases:
        result = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=env if env is not None else os.environ.copy(),
            cwd=tmp_path,
        )
        assert result.returncode == exit_code, (args, result.stderr)
        assert result.stdout.strip().splitlines()[-1] == "[]", (args, result.stdout)


def test_figures_without_a_published_warehouse_still_lists_them(tmp_path: Path) -> None:
    result = slf("figures", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    one_sentence(result, 0, "values not shown", "no warehouse has been published")
    assert "allocated_total  (Afsat i alt; unit kr)" in result.stdout
    assert "today:" not in result.stdout


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_inquiry_check_reports_every_problem_with_its_line(tmp_path: Path) -> None:
    text = (PROJECT / "inquiries" / "enhedslisten-slf.yaml").read_text(encoding="utf-8")
    broken = (
        text.replace("{{ spent_salaries }}", "{{ spent_salaries | safe }}")
        .replace("      - figure: allocated_by_source", "      - figure: allocated_by_sorce")
        .replace("{% endif %}", "{% endiff %}", 1)
        .replace("  - name: Thomas Medom", "  - nme: Thomas Medom")
    )
    path = tmp_path / "broken.yaml"
    path.write_text(broken, encoding="utf-8")
    result = slf("inquiry", "check", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    expected = [
        (_line_of(broken, "- nme: Thomas Medom"), "signatories[0].nme: unknown field"),
        (_line_of(broken, "- figure: allocated_by_sorce"), "did you mean 'allocated_by_source'?"),
        (_line_of(broken, "spent_salaries | safe"), "filter 'safe' is not allowed"),
        (_line_of(broken, "{% endiff %}"), "Encountered unknown tag 'endiff'"),
    ]
    for line, message in expected:
        assert any(f.startswith(f"{path}:{line}: ") and message in f for f in lines), (line, message, lines)
    assert lines[-1] == f"{path}: 5 problem(s)"  # the four, and the signatory's name now missing

    late = text.replace("deadline: 2024-09-09", "deadline: 2024-09-10")
    path.write_text(late, encoding="utf-8")
    result = slf("inquiry", "check", str(path))
    assert result.returncode == 1
    assert (
        f"{path}:{_line_of(late, 'deadline: 2024-09-10')}: deadline 2024-09-10 is not 10 working days after "
        f"2024-08-26" in result.stderr
    )
    assert slf("inquiry", "check", str(PROJECT / "inquiries" / "enhedslisten-slf.yaml")).returncode == 0


def test_inquiry_check_places_yaml_and_encoding_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("party: Venstre\nreceived: 2024-08-26\nsubject: [SLF\nwindow: x\n", encoding="utf-8")
    result = slf("inquiry", "check", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"{path}:4: not valid YAML: "), result.stderr
    path.write_bytes("party: Venstre\nsubject: Sk\u00e6rt\n".encode("cp1252"))
    result = slf("inquiry", "check", str(path))
    assert result.returncode == 1 and result.stderr.startswith(f"{path}:2: not UTF-8 text"), result.stderr


def first_files_of_each_source(master: Path, landing: Path, per_source: int = 2) -> Path:
    """Every source folder of ``master`` with its first files only (two, where it has several)."""
    for source in sorted(p for p in master.iterdir() if p.is_dir()):
        (landing / source.name).mkdir(parents=True)
        for file in sorted(f for f in source.iterdir() if f.is_file())[:per_source]:
            shutil.copy2(file, landing / source.name / file.name)
    return landing


def test_ingest_prints_a_table_per_source_and_nothing_of_the_libraries(
    tmp_path: Path, sample_landing_master: Path
) -> None:
    # every source, but not every month: the table's rows and counts are what this is about
    landing = first_files_of_each_source(sample_landing_master, tmp_path / "landing")
    warehouse = tmp_path / "wh" / "raw.duckdb"
    files = {s.name: len([f for f in s.iterdir() if f.is_file()]) for s in landing.iterdir() if s.is_dir()}
    assert len(files) == 6 and max(files.values()) == 2
    first = slf("ingest", "--landing", str(landing), "--warehouse", str(warehouse))
    assert first.returncode == 0, first.stderr
    assert not first.stderr.strip(), first.stderr
    for source, n in files.items():
        assert any(line.split()[:4] == [source, str(n), "0", "0"] for line in first.stdout.splitlines()), (
            source
        )
    again = slf("ingest", "--landing", str(landing), "--warehouse", str(warehouse))
    for source, n in files.items():
        assert any(line.split() == [source, "0", str(n), "0", "0"] for line in again.stdout.splitlines()), (
            source
        )
    assert (tmp_path / "wh" / "logs" / "slf_ingest.log").exists()


def test_a_new_inquiry_name_ending_in_a_newline_is_refused(tmp_path: Path) -> None:
    from slf_warehouse.answers.inquiry_template import write_new_inquiry

    with pytest.raises(ValueError, match="not a usable inquiry name"):
        write_new_inquiry("venstre-slf\n", tmp_path)
    assert list(tmp_path.iterdir()) == []
