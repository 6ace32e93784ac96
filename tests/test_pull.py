"""Pulling deliveries over HTTP(S) from a real server on loopback, with credentials from a Connection."""

from __future__ import annotations

import base64
import functools
import http.server
import threading
from pathlib import Path

import pytest

from conftest import raw_totals
from slf_warehouse.ingest import ingest_source
from slf_warehouse.ingest.pull import pull_source, source_location

USER, PASSWORD = "oekonomi", "s3cret/æøå"


class _AuthHandler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="exports"')
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def http_share(sample_landing: Path):
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_AuthHandler, directory=str(sample_landing))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.airflow  # the credentials come from an Airflow Connection (imports Airflow)
def test_pull_over_http_with_connection_credentials(
    http_share: str, sample_landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from urllib.parse import quote

    monkeypatch.setenv(
        "AIRFLOW_CONN_SLF_SOURCE_POSTERINGER", f"http://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1"
    )
    monkeypatch.setenv("SLF_SOURCE_POSTERINGER_URL", f"{http_share}/posteringer/")
    location = source_location("posteringer", tmp_path / "unused")
    pulled = pull_source("posteringer", location, tmp_path / "pulled")
    assert pulled.remote and len(pulled.files) == 30
    for name in pulled.files:
        assert (pulled.folder / name).read_bytes() == (sample_landing / "posteringer" / name).read_bytes()
    warehouse = tmp_path / "wh.duckdb"
    report = ingest_source("posteringer", tmp_path, warehouse, tmp_path / "q", folder=pulled.folder)
    assert not report.rejected and len(report.files) == 30
    assert raw_totals(warehouse)["posteringer"][0] == sum(
        len(p.read_bytes().splitlines()) - 1 for p in (sample_landing / "posteringer").iterdir()
    )


@pytest.mark.airflow  # looks the credentials up as an Airflow Connection (imports Airflow)
def test_pull_without_credentials_is_refused(http_share: str, tmp_path: Path) -> None:
    with pytest.raises(Exception, match="401|Unauthorized|Forbidden"):
        pull_source("posteringer", f"{http_share}/posteringer/", tmp_path / "pulled")
    assert not list((tmp_path / "pulled").rglob("*.csv"))


def test_local_location_is_used_in_place(sample_landing: Path, tmp_path: Path) -> None:
    pulled = pull_source("enheder", str(sample_landing / "enheder"), tmp_path / "pulled")
    assert (
        not pulled.remote and pulled.folder == sample_landing / "enheder" and pulled.files == ["enheder.csv"]
    )
