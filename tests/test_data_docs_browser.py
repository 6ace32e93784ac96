"""Data Docs in a real browser (slow): headless Chromium opens index.html from disk, without network.

Great Expectations' own index tables are drawn by bootstrap-table from public CDNs, so offline they
stay empty; the plain-HTML summary quality.data_docs adds must list every suite of the run, link to
each suite's page and to this run's validation page, and be visible in a screenshot.
Needs the Debian package `chromium` (make setup installs it).
"""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from conftest import corrupted_copy
from slf_warehouse.quality import load_suites, run_quality_checks

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PROJECT = Path(__file__).resolve().parents[1]
EXPECTATIONS = PROJECT / "expectations"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-extensions",
    "--hide-scrollbars",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("headless Chromium is needed: apt-get install chromium (make setup installs it)")
    return found


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"  # a fresh profile every time
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


class SuiteTable(HTMLParser):
    """The rows of table#slf-suites, and the page's visible text (outside script and style)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self.text: list[str] = []
        self._skip = 0
        self._in_table = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "table" and attrs.get("id") == "slf-suites":
            self._in_table = True
        if self._in_table and tag == "tr" and attrs.get("data-suite"):
            self.rows.append({"suite": attrs["data-suite"], "links": []})
        if self._in_table and tag == "a" and self.rows:
            self.rows[-1]["links"].append(attrs.get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1
        if tag == "table":
            self._in_table = False

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)
            if self._in_table and self.rows:
                self.rows[-1].setdefault("cells", []).append(data.strip())


@pytest.fixture(scope="module")
def data_docs(raw_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Data Docs of the raw suites on the sample, one suite failing (a corrupted funding source)."""
    root = tmp_path_factory.mktemp("data-docs-browser")
    warehouse = corrupted_copy(
        raw_warehouse,
        root / "warehouse.duckdb",
        "UPDATE raw.bevillinger SET finansieringskilde = 'SPONSOR' WHERE _source_line = 2",
    )
    result = run_quality_checks(warehouse, root / "quality", "browser-run", EXPECTATIONS, suites=["raw_*"])
    assert not result.success
    return result.data_docs_index


def test_the_suites_are_listed_in_the_browser(data_docs: Path, tmp_path: Path) -> None:
    done = run_chromium(tmp_path, "--dump-dom", data_docs.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    page = SuiteTable()
    page.feed(done.stdout)

    expected = {s.name for s in load_suites(EXPECTATIONS, ["raw_*"])}
    assert {r["suite"] for r in page.rows} == expected
    visible = " ".join(" ".join(page.text).split())
    assert "Datakvalitet: kørsel browser-run" in visible and "1 af 6 suiter fejlede" in visible
    for name in expected:
        assert name in visible
    status = {r["suite"]: [c for c in r["cells"] if c][-1] for r in page.rows}
    assert status["raw_bevillinger"] == "fejl"
    assert {s for n, s in status.items() if n != "raw_bevillinger"} == {"bestået"}
    # Each row links to the suite's page and to this run's validation page, and both exist.
    for row in page.rows:
        assert len(row["links"]) == 2, row
        suite_page, validation_page = (data_docs.parent / unquote(link) for link in row["links"])
        assert suite_page.is_file() and validation_page.is_file()
        assert "/validations/" in validation_page.as_posix() and "/browser-run/" in validation_page.as_posix()


def test_the_summary_is_visible_in_a_screenshot(data_docs: Path, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / "index.png"
    done = run_chromium(tmp_path, "--window-size=1100,700", f"--screenshot={shot}", data_docs.as_uri())
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    image = Image.open(shot).convert("L")
    assert image.size == (1100, 700)
    # The summary table (dark text on white) fills the top of the page: not a blank page.
    top = image.crop((0, 0, 700, 450))
    dark = sum(top.histogram()[:128])  # pixels darker than mid-grey
    assert dark > 2000, dark
