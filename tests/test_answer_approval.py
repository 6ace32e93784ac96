"""From draft to signed answer without a scheduler: the draft, the approval's decision, the final
letter and its PDF/A-3a archival copy, a rejection, a stale draft and refused params.

The real published DuckDB warehouse, real WeasyPrint PDFs read back with pdftotext and pypdf; the
signatory's response is what Airflow's HITL operator returns (tests/test_answer_approval_api.py
gives it through the REST API with real Airflow processes).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from test_answers_render import SEED, build_warehouse

INQUIRY = "enhedslisten-slf"
PROJECT = Path(__file__).resolve().parents[1]
APPROVED_AT = datetime(2026, 12, 1, 12, 5, tzinfo=UTC)  # 13.05 in Aarhus
DRAFTED_PATHS = ("folder", "pdf", "html", "figures_json")  # a draft record's paths


def publish(out: Path, data, run_id: str, version_stamp: str) -> str:
    """Publish ``data`` as a new warehouse version in ``out/warehouse``; its version."""
    from slf_warehouse.warehouse import WarehouseStore

    store = WarehouseStore(out / "warehouse")
    store.builds.mkdir(parents=True, exist_ok=True)
    build = build_warehouse(store.builds / f"{version_stamp}-{run_id}.duckdb", data)
    return store.publish(build, run_id).version


def pdf_pages(path: Path) -> list[str]:
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return [p for p in text.split("\f") if p.strip()]


def count_layouts(monkeypatch: pytest.MonkeyPatch) -> list:
    """The HTML documents WeasyPrint lays out from now on (each still laid out by WeasyPrint)."""
    import weasyprint

    layouts = []
    lay_out = weasyprint.HTML.render

    def counted(html: weasyprint.HTML, *args, **kwargs):
        layouts.append(html)
        return lay_out(html, *args, **kwargs)

    monkeypatch.setattr(weasyprint.HTML, "render", counted)
    return layouts


def response(choice: str, username: str, comment: str = "") -> dict:
    """What LetterApproval returns to XCom (HITLTriggerEventSuccessPayload)."""
    return {
        "chosen_options": [choice],
        "params_input": {"kommentar": comment},
        "responded_at": APPROVED_AT,
        "responded_by_user": {"id": "7", "name": username},
    }


@pytest.fixture(scope="module")
def published_seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse store with SEED published, made once for the module (tests get a copy)."""
    out = tmp_path_factory.mktemp("published") / "out"
    publish(out, SEED, "scheduled__2024-09-06", "20240906T060000")
    return out / "warehouse"


@pytest.fixture()
def output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, published_seed: Path) -> Path:
    monkeypatch.delenv("SLF_WAREHOUSE_DIR", raising=False)
    monkeypatch.delenv("SLF_WAREHOUSE_ENGINE", raising=False)
    out = tmp_path / "out"
    monkeypatch.setenv("SLF_OUTPUT_DIR", str(out))
    shutil.copytree(published_seed, out / "warehouse")  # modes kept: the store's folders are private
    return out


@pytest.fixture(scope="module")
def drafted_seed(published_seed: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The draft of run manual__1 (no edition note), made once for the module: its output folder
    and its record (tests take a copy with ``drafted``)."""
    from slf_warehouse.answers.approval import render_draft

    out = tmp_path_factory.mktemp("drafted") / "out"
    shutil.copytree(published_seed, out / "warehouse")
    with pytest.MonkeyPatch.context() as env:
        env.delenv("SLF_WAREHOUSE_DIR", raising=False)
        env.delenv("SLF_WAREHOUSE_ENGINE", raising=False)
        env.setenv("SLF_OUTPUT_DIR", str(out))
        return out, render_draft({"inquiry": INQUIRY}, "manual__1")


@pytest.fixture()
def drafted(output: Path, drafted_seed: tuple[Path, dict]) -> dict:
    """``output`` with a copy of ``drafted_seed``'s draft; its record (also its draft.json) naming
    this copy's files."""
    from slf_warehouse.answers.approval import DRAFT_RECORD

    master, record = drafted_seed
    shutil.copytree(master / "answers", output / "answers")
    draft = {**record, **{k: record[k].replace(str(master), str(output), 1) for k in DRAFTED_PATHS}}
    (Path(draft["folder"]) / DRAFT_RECORD).write_text(
        json.dumps(draft, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
    )
    return draft


def check_archive_against_warehouse(archive: Path, warehouse: Path, final_sidecar: Path) -> dict:
    """The PDF/A-3a's embedded files: the sidecar byte for byte, every query re-run on the warehouse
    giving the sidecar's value, and the approval record. Returns the approval record."""
    import pypdf

    reader = pypdf.PdfReader(archive)
    xmp = reader.xmp_metadata
    assert xmp is not None and str(xmp.pdfaid_part) == "3" and str(xmp.pdfaid_conformance) == "A"
    files = {name: data[0] for name, data in reader.attachments.items()}
    assert set(files) == {f"{INQUIRY}.figures.json", "datagrundlag.sql", "godkendelse.json"}
    assert files[f"{INQUIRY}.figures.json"] == final_sidecar.read_bytes()
    figures = json.loads(files[f"{INQUIRY}.figures.json"])["figures"]
    blocks = re.findall(
        r"-- figure: (\S+)\n-- label: [^\n]*\n-- bound: ([^\n]*)\n(.*?);\n",
        files["datagrundlag.sql"].decode("utf-8"),
        re.DOTALL,
    )
    assert sorted(b[0] for b in blocks) == sorted(figures) and len(blocks) >= 10
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for name, bound, sql in blocks:
            values = [
                date.fromisoformat(v) if isinstance(v, str) and re.fullmatch(r"\d{4}-\d\d-\d\d", v) else v
                for v in json.loads(bound)
            ]
            rows = con.execute(sql, values).fetchall()
            expected = figures[name]
            if "parts" in expected:  # a table figure: every row's value, in order
                got = [str(r[-2]) if isinstance(r[-2], Decimal) else r[-2] for r in rows]
                want = [p["value"] for p in expected["parts"]]
                assert [str(g) for g in got] == [str(w) for w in want], name
            else:
                value = rows[0][0]
                assert str(value) == str(expected["value"]) or (
                    isinstance(value, float) and repr(value) == expected["value"]
                ), (name, value, expected["value"])
    return json.loads(files["godkendelse.json"])


def test_draft_then_approval_gives_the_signed_final_and_its_archive(
    output: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from slf_warehouse.answers.approval import APPROVE, approval_body, conclude, render_draft

    draft = render_draft(
        {"inquiry": INQUIRY, "edition_note": "1. udgave"}, "manual__2026-12-01T12:00:00+00:00"
    )
    assert draft["folder"] == str(output / "answers" / "review" / "manual__2026-12-01T12_00_00_00_00")
    assert [s["username"] for s in draft["signatories"]] == ["tmedom", "moechristensen"]
    pages = pdf_pages(Path(draft["pdf"]))
    assert len(pages) >= 3 and all("UDKAST" in p for p in pages)
    text = "\n".join(pages)
    assert (
        "Godkendt af" not in text
        and "Thomas Medom" not in text
        and "underskrives, når det er godkendt" in text
    )
    body = approval_body(draft)
    assert "26 mio. kr." in body and draft["pdf_sha256"] in body and "første udgave" in body
    assert "Ikke godkendt" not in body and "Thomas Medom (tmedom)" in body
    assert not (output / "answers" / "approved").exists()

    layouts = count_layouts(monkeypatch)
    done = conclude(draft, response(APPROVE, "tmedom"))
    assert len(layouts) == 1  # the final and its archival copy are written from one layout of the letter
    approved = output / "answers" / "approved"
    assert done["decision"] == "approved" and done["by"] == "tmedom"
    final_pages = pdf_pages(approved / f"{INQUIRY}.pdf")
    final = "\n".join(final_pages)
    assert not any("UDKAST" in p for p in final_pages)
    assert "Godkendt af Thomas Medom, Rådmand, den 1. december 2026 kl. 13.05" in final
    assert (
        "Ikke underskrevet" not in final and "Ikke underskrevet" not in text
    )  # the note is for unsigned letters
    assert draft["pdf_sha256"] in final and "1. udgave" in final  # the Datagrundlag's approval section
    archive_pages = pdf_pages(approved / f"{INQUIRY}.arkiv.pdf")
    assert not any("UDKAST" in p for p in archive_pages) and "Godkendt af Thomas Medom" in "\n".join(
        archive_pages
    )
    warehouse = next((output / "warehouse" / "versions").glob("*.duckdb"))
    record = check_archive_against_warehouse(
        approved / f"{INQUIRY}.arkiv.pdf", warehouse, approved / f"{INQUIRY}.figures.json"
    )
    assert record["edition"]["approval"]["draft_sha256"] == draft["pdf_sha256"]
    assert record["edition"]["approval"]["username"] == "tmedom"
    assert record["warehouse"]["version"] == draft["warehouse_version"]
    assert json.loads((Path(draft["folder"]) / "draft.json").read_text())["status"] == "approved"
    [logged] = [
        json.loads(line) for line in (output / "answers" / "approvals.jsonl").read_text().splitlines()
    ]
    assert logged["decision"] == "approved" and logged["draft_sha256"] == draft["pdf_sha256"]
    assert not list(approved.glob(".staging-*"))


def test_an_edition_note_is_shown_as_text_on_the_approval_page(output: Path) -> None:
    """Airflow renders the approval page's body as Markdown in the signatory's browser: an answer
    writer's note must not become an image, a link or HTML there."""
    from markdown_it import MarkdownIt

    from slf_warehouse.answers.approval import approval_body, render_draft

    note = (
        "![kvittering](http://127.0.0.1:9/leak.png) <img src=http://127.0.0.1:9/x> "
        "[se her](http://127.0.0.1:9/y) <http://127.0.0.1:9/z> | *fed* `kode`"
    )
    draft = render_draft({"inquiry": INQUIRY, "edition_note": note}, "manual__2026-12-01T13:00:00+00:00")
    html = MarkdownIt("commonmark").enable("table").render(approval_body(draft))
    assert "<img" not in html and "<a " not in html and "<em>" not in html and "<code>kode" not in html
    assert (
        "![kvittering](http://127.0.0.1:9/leak.png)" in html
        and "&lt;img src=http://127.0.0.1:9/x&gt;" in html
    )
    assert "26 mio. kr." in html  # the figures stay readable


def test_someone_else_rejection_without_comment_and_rejection(output: Path, drafted: dict) -> None:
    from slf_warehouse.answers.approval import APPROVE, REJECT, ApprovalError, conclude

    draft = drafted
    with pytest.raises(ApprovalError, match="'peter', who is not a signatory"):
        conclude(draft, response(APPROVE, "peter"))
    with pytest.raises(ApprovalError, match="a rejection needs a comment"):
        conclude(draft, response(REJECT, "moechristensen", "  "))
    assert not (output / "answers" / "approved").exists()

    done = conclude(draft, response(REJECT, "moechristensen", "Spørgsmål 3: brug tallene for hele 2024."))
    assert done["decision"] == "rejected"
    kept = json.loads((Path(draft["folder"]) / "rejection.json").read_text())
    assert kept["comment"] == "Spørgsmål 3: brug tallene for hele 2024." and kept["by"] == "moechristensen"
    assert json.loads((Path(draft["folder"]) / "draft.json").read_text())["status"] == "rejected"
    assert not (output / "answers" / "approved").exists()  # no final letter


@pytest.mark.slow  # five renders of the whole letter and the refresh's answer step: about 6 s of CPU
def test_a_new_publication_makes_a_waiting_draft_stale(
    output: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A project with only the inquiry the seed warehouse's marts can answer (the refresh renders all).
    project = tmp_path / "project"
    (project / "inquiries").mkdir(parents=True)
    (project / "report_templates").symlink_to(PROJECT / "report_templates")
    (project / "inquiries" / f"{INQUIRY}.yaml").write_bytes(
        (PROJECT / "inquiries" / f"{INQUIRY}.yaml").read_bytes()
    )
    monkeypatch.setenv("SLF_PROJECT_DIR", str(project))
    from slf_warehouse.answers.approval import (
        APPROVE,
        ApprovalError,
        approval_body,
        conclude,
        mark_stale_drafts,
        render_draft,
    )

    first = render_draft({"inquiry": INQUIRY}, "manual__1")
    conclude(first, response(APPROVE, "tmedom"))
    waiting = render_draft({"inquiry": INQUIRY}, "manual__2")
    more = dataclasses.replace(
        SEED, allocations=[*SEED.allocations, ("PULJE", date(2024, 1, 1), date(2024, 6, 30), 2_000_000)]
    )
    version = publish(output, more, "scheduled__2024-09-07", "20240907T060000")
    # The refresh renders the answers after it publishes, and marks older waiting drafts then.
    from slf_warehouse.pipeline import render_answers
    from slf_warehouse.settings import Settings

    render_answers(Settings.from_env(), "scheduled__2024-09-07")
    assert json.loads((Path(waiting["folder"]) / "draft.json").read_text())["stale_since_version"] == version
    assert mark_stale_drafts(output / "answers", version) == []  # once
    before = (output / "answers" / "approved" / f"{INQUIRY}.pdf").read_bytes()
    with pytest.raises(ApprovalError, match="the draft is stale"):
        conclude(waiting, response(APPROVE, "tmedom"))
    assert (output / "answers" / "approved" / f"{INQUIRY}.pdf").read_bytes() == before
    assert json.loads((Path(waiting["folder"]) / "draft.json").read_text())["status"] == "stale"

    # A new draft compares with the last *approved* edition: the added pool money shows.
    fresh = render_draft({"inquiry": INQUIRY}, "manual__3")
    assert "allocated_total" in fresh["changed_figures"]
    body = approval_body(fresh)
    assert (
        "Ændringer siden sidste godkendte udgave" in body
        and "| Afsat i alt | 26.000.000,00 kr. | 28.000.000,00 kr. |" in body
    )


def test_a_changed_draft_or_inquiry_is_not_approved(
    output: Path, drafted: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from slf_warehouse.answers.approval import APPROVE, ApprovalError, conclude

    draft = drafted
    shown = Path(draft["pdf"]).read_bytes()
    with Path(draft["pdf"]).open("ab") as f:
        f.write(b"%")
    with pytest.raises(ApprovalError, match="changed on disk"):
        conclude(draft, response(APPROVE, "tmedom"))
    assert not (output / "answers" / "approved").exists()

    # The draft as shown, but its inquiry's text changed since: refused before a final is laid out.
    Path(draft["pdf"]).write_bytes(shown)
    project = tmp_path / "project"  # the project's files with that inquiry edited
    (project / "inquiries").mkdir(parents=True)
    (project / "report_templates").symlink_to(PROJECT / "report_templates")
    inquiry = project / "inquiries" / f"{INQUIRY}.yaml"
    inquiry.write_bytes((PROJECT / "inquiries" / f"{INQUIRY}.yaml").read_bytes())
    monkeypatch.setenv("SLF_PROJECT_DIR", str(project))
    text = inquiry.read_text(encoding="utf-8")
    assert "til understøttelsen." in text
    inquiry.write_text(
        text.replace("til understøttelsen.", "til understøttelsen. Tilføjet."), encoding="utf-8"
    )
    layouts = count_layouts(monkeypatch)
    with pytest.raises(ApprovalError, match="differ from the approved draft's; no final letter was written"):
        conclude(draft, response(APPROVE, "tmedom"))
    assert layouts == []  # no final made only to be thrown away
    assert not list((output / "answers" / "approved").glob("*"))  # no letter, no staging folder


@pytest.mark.parametrize(
    "params, message",
    [
        ({"inquiry": "/work/main/inquiries/enhedslisten-slf.yaml"}, "a path is not accepted"),
        ({"inquiry": "../inquiries/enhedslisten-slf"}, "a path is not accepted"),
        ({"inquiry": "enhedslisten-slf.yaml"}, "a path is not accepted"),
        ({"inquiry": INQUIRY, "output_dir": "/tmp/elsewhere"}, "param(s) output_dir not accepted"),
    ],
)
def test_params_naming_paths_are_refused(output: Path, params: dict, message: str) -> None:
    from slf_warehouse.answers.approval import ApprovalError, render_draft

    with pytest.raises(ApprovalError) as caught:
        render_draft(params, "manual__1")
    assert message in str(caught.value)
    assert not (output / "answers").exists()


@pytest.mark.airflow  # imports the auth manager (Airflow and its FAB provider)
def test_signatory_role_and_login_matching() -> None:
    """Signatories answer approvals of slf_answer_inquiry and trigger nothing; assignments match logins."""
    from types import SimpleNamespace

    from slf_warehouse.auth_manager import SlfAuthManager
    from slf_warehouse.deployment import SIGNATORY, role_permissions

    roles = role_permissions()[SIGNATORY]
    assert ("can_edit", "HITL Detail") in roles and ("can_edit", "DAG:slf_answer_inquiry") in roles
    assert not [r for a, r in roles if a == "can_create"]
    manager = SlfAuthManager.__new__(SlfAuthManager)
    assert manager.is_authorized_hitl_task(
        assigned_users={"tmedom"}, user=SimpleNamespace(username="tmedom", id=3)
    )
    assert not manager.is_authorized_hitl_task(
        assigned_users={"3"}, user=SimpleNamespace(username="peter", id=3)
    )
