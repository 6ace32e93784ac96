"""The warehouse reader's engine-independent parts: the one placeholder translation and the setting."""

from __future__ import annotations

import pytest

from slf_warehouse.warehouse_reader import DuckDBSource, engine_from_env, open_reader, to_pyformat


def test_placeholders_become_pyformat_outside_quotes_only() -> None:
    sql = """SELECT '?', "a?b", x % 2 FROM t WHERE a = ? AND b IN (?, ?) AND c LIKE 'x%'"""
    assert to_pyformat(sql, 3) == (
        """SELECT '?', "a?b", x %% 2 FROM t WHERE a = %s AND b IN (%s, %s) """
        "AND c LIKE 'x%%'"
    )
    with pytest.raises(ValueError, match="2 placeholder"):
        to_pyformat("SELECT ? + ?", 1)
    with pytest.raises(ValueError, match="unterminated"):
        to_pyformat("SELECT 'x", 0)


def test_the_engine_setting() -> None:
    assert engine_from_env({}) == "duckdb"
    assert engine_from_env({"SLF_WAREHOUSE_ENGINE": " Postgres "}) == "postgres"
    with pytest.raises(ValueError, match="SLF_WAREHOUSE_ENGINE='sqlite'"):
        engine_from_env({"SLF_WAREHOUSE_ENGINE": "sqlite"})


def test_settings_name_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    from slf_warehouse.settings import Settings

    monkeypatch.delenv("SLF_WAREHOUSE_ENGINE", raising=False)
    assert Settings.from_env().warehouse_engine == "duckdb"
    monkeypatch.setenv("SLF_WAREHOUSE_ENGINE", "postgres")
    monkeypatch.setenv("SLF_PG_HOST", "db.example")
    settings = Settings.from_env()
    assert settings.warehouse_engine == "postgres" and "host=db.example" in settings.pg_conninfo


def test_duckdb_reader_is_read_only_and_keeps_names(tmp_path) -> None:
    import duckdb

    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA marts; CREATE TABLE marts.t (a DECIMAL(18, 2), b VARCHAR)")
    with open_reader(DuckDBSource(path)) as reader:
        assert reader.relation("marts", "t") == '"marts"."t"'
        assert reader.columns("marts", "t") == {"a": "DECIMAL(18,2)", "b": "VARCHAR"}
        assert reader.describe() == {"engine": "duckdb", "file": "wh.duckdb"} and reader.version is None
        with pytest.raises(duckdb.Error, match="read-only"):
            reader.execute("INSERT INTO marts.t VALUES (?, ?)", [1, "x"])
    with pytest.raises(FileNotFoundError), open_reader(tmp_path / "missing.duckdb"):
        pass


def test_a_refresh_on_a_warehouse_it_cannot_reach_is_refused_before_it_starts(tmp_path) -> None:
    """SLF_WAREHOUSE_ENGINE=postgres makes `slf run` refresh PostgreSQL (test_end_to_end_postgres):
    when the server does not answer, or the engine is unknown, it says so at once, naming the
    server but never its password, and claims no output folder."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (tmp_path / "landing").mkdir()
    password = "not-the-real-one-0c5e2f9d"
    base = {
        **os.environ,
        "SLF_PG_HOST": "127.0.0.1",
        "SLF_PG_PORT": str(port),
        "SLF_PG_PASSWORD": password,
        "SLF_PG_DATABASE": "slf_wh",
    }
    for engine, said in (
        ("postgres", f"the warehouse server 127.0.0.1:{port}/slf_wh cannot be reached"),
        ("sqlite", "SLF_WAREHOUSE_ENGINE='sqlite': expected one of"),
    ):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "slf_warehouse.cli",
                "run",
                "--landing",
                str(tmp_path / "landing"),
                "--out",
                str(tmp_path / "out"),
            ],
            env={**base, "SLF_WAREHOUSE_ENGINE": engine},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        assert said in done.stderr
        assert password not in done.stderr + done.stdout
        assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()
