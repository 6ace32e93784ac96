"""A rejected payroll delivery leaves no name, employee number or pay in any output or log.

`navn` and `rolle` swapped in a payroll file's header: the file is rejected (names where roles
belong), so every check on it sees names and amounts. `slf run` (through Airflow, under a loose
umask) must still write none of them to any file under OUT/ (quality results, GE's folder, Data
Docs, the PDF report, history, the quarantine's error reports, the warehouse files), to its log
(OUT/logs/slf_refresh.log), to the Airflow task logs of the run or to its own stdout/stderr; and
every one of those files is readable by the service user only. The delivered file itself, kept
in the quarantine so it can be corrected, is the one file allowed to hold them: it is checked for
its mode instead.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from leak_scan import amount_forms, files_under, find_leaks
from slf_warehouse.airflow_env import airflow_environment

pytestmark = pytest.mark.slow
SCRAMBLED = "loen_2024-06.csv"


def scramble_header(path: Path) -> list[dict[str, str]]:
    """Swap `navn` and `rolle` in the header; returns the file's rows as delivered (true columns)."""
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    header = lines[0].split(";")
    rows = [dict(zip(header, line.split(";"), strict=True)) for line in lines[1:]]
    i, j = header.index("navn"), header.index("rolle")
    header[i], header[j] = header[j], header[i]
    path.write_text("\n".join([";".join(header), *lines[1:]]) + "\n", encoding="utf-8-sig")
    return rows


def danish_amount(text: str) -> Decimal:
    return Decimal(text.replace(".", "").replace(",", "."))


def test_a_scrambled_payroll_header_leaves_no_personal_data_anywhere(
    sample_landing: Path, tmp_path: Path
) -> None:
    rows = scramble_header(sample_landing / "loen" / SCRAMBLED)
    delivered = (sample_landing / "loen" / SCRAMBLED).read_bytes()
    names = {r["navn"] for r in rows}
    numbers = {r["medarbejdernr"] for r in rows}
    # individual amounts with øre: round ones (1.850,00) turn up in any figure by chance
    amounts = {
        form
        for r in rows
        if not r["beloeb"].endswith(",00")
        for form in amount_forms(danish_amount(r["beloeb"]))
    }
    assert "Søren Jensen" in names and len(numbers) > 10 and len(amounts) > 20

    out = tmp_path / "out"
    env = airflow_environment(dict(os.environ))
    logs = Path(env["AIRFLOW_HOME"]) / "logs"
    started = time.time() - 1
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "slf_warehouse.cli",
            "run",
            "--landing",
            str(sample_landing),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        preexec_fn=lambda: os.umask(0o022),
    )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]  # the delivery was rejected
    (tmp_path / "stdout.txt").write_text(done.stdout, encoding="utf-8")
    (tmp_path / "stderr.txt").write_text(done.stderr, encoding="utf-8")
    assert SCRAMBLED in done.stderr  # the officer is told which file ...

    outputs = files_under(out)
    task_logs = [p for p in files_under(logs) if p.stat().st_mtime >= started] if logs.is_dir() else []
    assert out / "logs" / "slf_refresh.log" in outputs and (out / "quality" / "report.pdf") in outputs
    kept = [p for p in outputs if p.read_bytes() == delivered]
    assert kept, "the rejected delivery is kept in the quarantine"
    in_warehouse = [p for p in outputs if "warehouse" in p.relative_to(out).parts[:1]]
    readable = [p for p in outputs + task_logs if p not in kept and p not in in_warehouse]
    readable += [tmp_path / "stdout.txt", tmp_path / "stderr.txt"]

    leaks = find_leaks(readable, names | numbers | amounts)
    # the warehouse may hold pay (other months load it), never a name or an employee number
    leaks.update(find_leaks(in_warehouse, names | numbers))
    assert not leaks, {k: sorted(set(v))[:3] for k, v in sorted(leaks.items())[:12]}

    loose = [
        f"{oct(stat.S_IMODE(p.lstat().st_mode))} {p}"
        for p in [out, *out.rglob("*"), *task_logs]
        if not p.is_symlink() and p.lstat().st_mode & 0o077
    ]
    assert not loose, loose[:20]
