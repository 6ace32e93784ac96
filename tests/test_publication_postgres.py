"""Atomic publication on PostgreSQL through the refresh (`SLF_WAREHOUSE_ENGINE=postgres slf run`),
the PostgreSQL side of test_publication.py and test_concurrent_runs.py:

- a refresh killed mid-build (SIGKILL to the `slf run` process group while dbt rebuilds the marts)
  leaves the published marts as they were: rows and a checksum per table, read through the
  `marts` views readers use; the next refresh retires the killed run (recorded as failed) and
  drops its schemas;
- answers rendered again and again while that next refresh publishes each read one version: the
  figures in every letter's sidecar are exactly those of the version its appendix names.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from pg_server import PgServer, fresh_database, pg_server_fixture  # noqa: F401 - registers the `pg_server` fixture
from slf_warehouse import run_lock
from slf_warehouse.answers.figures import FIGURES
from slf_warehouse.quality.history import read_history
from test_concurrent_runs import _kill, _wait_for
from test_end_to_end import SLF
from test_end_to_end_postgres import build_schemas, pg_env, rows, versions
from test_warehouse_pg import checksums

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parents[1]
INQUIRY = PROJECT / "inquiries" / "enhedslisten-slf.yaml"


def _marts_tables(pg: PgServer, schema: str) -> dict[str, int]:
    return dict(
        rows(
            pg,
            """select c.relname, c.oid::bigint from pg_class c join pg_namespace n on n.oid = c.relnamespace
                            where n.nspname = %s and c.relkind = 'r' and c.relname not like '%%__dbt_%%'""",
            (schema,),
        )
    )


def _figures(sidecar: Path) -> tuple[str, dict]:
    doc = json.loads(sidecar.read_text(encoding="utf-8"))
    return doc["run_info"]["version"], {
        name: (f.get("exact"), json.dumps(f.get("parts"), sort_keys=True))
        for name, f in doc["figures"].items()
    }


def test_a_killed_refresh_leaves_the_marts_and_answers_read_one_version_during_publication(
    sample_landing: Path,
    tmp_path: Path,
    pg_server: PgServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pg = fresh_database(pg_server)
    env, out = pg_env(pg), tmp_path / "out"
    cmd = [*SLF, "run", "--landing", str(sample_landing), "--out", str(out)]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout + first.stderr
    [(first_run, *_)] = versions(pg)
    before = checksums(pg)
    assert len(before) >= 15 and all(count > 0 for count, _ in before.values())

    # A correction arrives (one SLF posting moved to another programme, one allocation raised), and
    # the refresh that loads it is killed while dbt rebuilds the build's marts.
    month = sample_landing / "posteringer" / "posteringer_2023-03.csv"
    month.write_bytes(month.read_bytes().replace(b";SLF;", b";DRIFT;", 1))
    allocations = sample_landing / "bevillinger" / "bevillinger.csv"
    allocations.write_bytes(allocations.read_bytes().replace(b";3.492.000,00;", b";3.592.000,00;", 1))

    def new_builds() -> list[tuple]:
        return rows(
            pg, "select version, run_id from slf_publication.versions where run_id <> %s", (first_run,)
        )

    killed = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        _wait_for(new_builds, 300, "the killed run's build", killed)
        [(version, killed_run)] = new_builds()
        copied = _marts_tables(pg, f"b_{version}_marts")
        assert len(copied) >= 15  # the build starts as a copy of the published version
        _wait_for(
            lambda: any(_marts_tables(pg, f"b_{version}_marts").get(n) != oid for n, oid in copied.items()),
            600,
            "dbt rebuilding a first mart in the build",
            killed,
        )
    finally:
        _kill(killed)
    _wait_for(
        lambda: (
            not rows(
                pg,
                "select count(*) from pg_stat_activity where backend_type = 'client backend' "
                "and pid <> pg_backend_pid()",
            )[0][0]
        ),
        30,
        "the killed sessions ending",
    )
    rebuilt = [n for n, oid in copied.items() if _marts_tables(pg, f"b_{version}_marts").get(n) != oid]
    assert 1 <= len(rebuilt) < len(copied), rebuilt  # killed mid-build
    assert checksums(pg) == before  # the published marts, through the views, are unchanged
    assert [v[0] for v in versions(pg) if v[2]] == [first_run]
    assert any(s.startswith(f"b_{version}_") for s in build_schemas(pg))  # left behind by the kill
    assert run_lock.lease(out).run_id == killed_run

    # The next refresh: answers are rendered from the published warehouse again and again meanwhile.
    for name, value in pg.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SLF_WAREHOUSE_ENGINE", "postgres")
    from slf_warehouse.answers.published import answer_from_published

    renders: list[Path] = []
    refreshing = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )

    def render_until_done() -> None:
        extra = 3  # and a few after the refresh ended, from the new version
        while extra:
            folder = tmp_path / f"render-{len(renders):03d}"
            answer_from_published(INQUIRY, output_dir=folder)
            renders.append(folder / "answers" / "enhedslisten-slf.figures.json")
            if refreshing.poll() is not None:
                extra -= 1

    reader = threading.Thread(target=render_until_done, daemon=True)
    started = time.perf_counter()
    try:
        reader.start()
        output, _ = refreshing.communicate(timeout=900)
        reader.join(timeout=300)
    finally:
        _kill(refreshing)
    elapsed = time.perf_counter() - started
    print(f"refresh after the kill: {elapsed:.1f} s, {len(renders)} answers rendered meanwhile")
    assert refreshing.returncode == 0, output[-5000:]
    assert not reader.is_alive()

    # the killed run: recorded as failed, its schemas dropped, never published
    history = {r["run_id"]: r for r in read_history(out / "quality")}
    assert history[killed_run]["status"] == "failed"
    assert history[killed_run]["failed_steps"][0].startswith("interrupted")
    assert not any(s.startswith(f"b_{version}_") for s in build_schemas(pg))
    assert rows(
        pg,
        "select published_at, dropped_at is not null from slf_publication.versions where version = %s",
        (version,),
    ) == [(None, True)]
    current = [v for v in versions(pg) if v[2]]
    assert len(current) == 1 and current[0][0] not in (first_run, killed_run)
    assert checksums(pg) != before  # the correction is published

    # every answer read one version: its figures are exactly those of the version its appendix names
    from slf_warehouse.answers.render import render_inquiry
    from slf_warehouse.warehouse_reader import PostgresSource

    seen = [_figures(path) for path in renders]
    reference = {}
    for version_seen in sorted({v for v, _ in seen}):
        rendered = render_inquiry(
            PostgresSource(pg.conninfo(), version_seen), INQUIRY, tmp_path / f"ref-{version_seen}"
        )
        reference[version_seen] = _figures(rendered.sidecar_path)[1]
    assert len(reference) == 2, sorted(reference)  # the renders spanned the publication
    for version_seen, figures in seen:
        assert figures == reference[version_seen], version_seen
    old, new = reference.values()
    changed_marts = {FIGURES[name].mart for name in old if old[name] != new[name]}
    assert len(changed_marts) >= 2, changed_marts  # a mix of the two versions would show
