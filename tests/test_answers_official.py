"""Only the project's inquiries/ publish to answers/; every letter names its inquiry file's SHA-256.

An inquiry file from anywhere else, even one called enhedslisten-slf.yaml, renders to answers/drafts/
(or a folder the caller names), is marked as not official on every page, in the appendix and in the
sidecar, and leaves the official letter as it was. PDFs are read back with pypdf.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from pdf_text import page_texts
from test_answers_render import INQUIRY, SEED, build_warehouse, pdf_text

MARK = "IKKE OFFICIELT SVAR – forespørgslen er ikke fra inquiries/"


@pytest.fixture(scope="module")
def published_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse store with SEED published, made once for the module (tests get a copy)."""
    from slf_warehouse.warehouse import WarehouseStore

    store = WarehouseStore(tmp_path_factory.mktemp("published") / "warehouse")
    store.builds.mkdir(parents=True)
    store.publish(
        build_warehouse(store.builds / "20240906T060000-scheduled.duckdb", SEED), "scheduled__2024-09-06"
    )
    return store.root


@pytest.fixture()
def published_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, published_store: Path) -> Path:
    monkeypatch.delenv("SLF_WAREHOUSE_DIR", raising=False)
    monkeypatch.delenv("SLF_PROJECT_DIR", raising=False)
    out = tmp_path / "out"
    shutil.copytree(published_store, out / "warehouse")
    return out


@pytest.fixture(scope="module")
def official_rendered(published_store: Path, tmp_path_factory: pytest.TempPathFactory):
    """The official letter rendered once for the module from a copy of the store: (output, result)."""
    from slf_warehouse.answers.published import answer_from_published

    out = tmp_path_factory.mktemp("official") / "out"
    shutil.copytree(published_store, out / "warehouse")
    with pytest.MonkeyPatch.context() as env:
        env.delenv("SLF_WAREHOUSE_DIR", raising=False)
        env.delenv("SLF_PROJECT_DIR", raising=False)
        return out, answer_from_published("enhedslisten-slf", out)


@pytest.fixture()
def official_output(published_output: Path, official_rendered) -> tuple[Path, dict]:
    """``published_output`` with the official letter in answers/ (a copy of ``official_rendered``'s),
    and the result ``answer_from_published`` gave for it, its paths in this copy."""
    rendered_out, result = official_rendered
    shutil.copytree(rendered_out / "answers", published_output / "answers")
    here = {
        k: str(published_output / Path(result[k]).relative_to(rendered_out))
        for k in ("pdf", "html", "figures_json")
    }
    return published_output, {**result, **here}


@pytest.fixture()
def impostor(tmp_path: Path) -> Path:
    """The official inquiry's name and text, from another folder, with one answer changed."""
    path = tmp_path / "elsewhere" / "enhedslisten-slf.yaml"
    path.parent.mkdir()
    text = INQUIRY.read_text(encoding="utf-8")
    assert "til understøttelsen." in text
    path.write_text(
        text.replace("til understøttelsen.", "til understøttelsen. Et svar skrevet et andet sted."),
        encoding="utf-8",
    )
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_official_letter_names_its_inquiry_files_sha256(official_output: tuple[Path, dict]) -> None:
    published_output, result = official_output
    pdf = Path(result["pdf"])
    assert pdf == published_output / "answers" / "enhedslisten-slf.pdf" and result["official"] is True
    assert result["inquiry_sha256"] == sha256(INQUIRY)
    text = pdf_text(pdf)
    assert sha256(INQUIRY) in text.replace(" ", "")  # the appendix cell may wrap the hash
    assert "Officielt svar Ja" in text and MARK not in text and "Officielt Nej" not in text
    sidecar = json.loads(Path(result["figures_json"]).read_text(encoding="utf-8"))
    assert sidecar["inquiry_sha256"] == sha256(INQUIRY) and sidecar["official"] is True


def test_an_inquiry_from_elsewhere_does_not_replace_the_official_letter(
    official_output: tuple[Path, dict], impostor: Path
) -> None:
    from slf_warehouse.answers.published import answer_from_published

    published_output, official = official_output
    before = {p.name: p.read_bytes() for p in (published_output / "answers").iterdir() if p.is_file()}

    result = answer_from_published(impostor, published_output)
    drafts = published_output / "answers" / "drafts"
    assert result["official"] is False and Path(result["pdf"]) == drafts / "enhedslisten-slf.pdf"
    after = {p.name: p.read_bytes() for p in (published_output / "answers").iterdir() if p.is_file()}
    assert after == before  # the official PDF, HTML and sidecar are untouched
    assert "Et svar skrevet et andet sted." not in pdf_text(Path(official["pdf"]))

    pages = page_texts(result["pdf"])
    assert len(pages) > 1 and all(MARK in page for page in pages)
    text = " ".join(pages)
    assert "Et svar skrevet et andet sted." in text and "Officielt Nej" in text
    assert "Officielt svar Nej: forespørgselsfilen ligger uden for projektets inquiries/" in text
    assert sha256(impostor) in text.replace(" ", "") and sha256(impostor) != sha256(INQUIRY)
    sidecar = json.loads((drafts / "enhedslisten-slf.figures.json").read_text(encoding="utf-8"))
    assert sidecar["official"] is False and sidecar["inquiry_sha256"] == sha256(impostor)


def test_an_inquiry_from_elsewhere_may_not_be_sent_to_answers(
    published_output: Path, impostor: Path, tmp_path: Path
) -> None:
    from slf_warehouse.answers.inquiry import InquiryError
    from slf_warehouse.answers.published import answer_from_published

    answers = published_output / "answers"
    with pytest.raises(InquiryError, match=r"only inquiry files in .*inquiries publish to .*answers"):
        answer_from_published(impostor, published_output, out_dir=answers)
    assert not answers.exists()
    chosen = tmp_path / "my-letters"
    result = answer_from_published(impostor, published_output, out_dir=chosen)
    assert Path(result["pdf"]) == chosen / "enhedslisten-slf.pdf" and result["official"] is False
    assert MARK in pdf_text(Path(result["pdf"]))


def test_a_link_in_inquiries_to_a_file_elsewhere_is_not_official(tmp_path: Path, impostor: Path) -> None:
    from slf_warehouse.answers.published import is_official_inquiry

    inquiries = tmp_path / "project" / "inquiries"
    inquiries.mkdir(parents=True)
    (inquiries / "enhedslisten-slf.yaml").symlink_to(impostor)
    (inquiries / "own.yaml").write_bytes(impostor.read_bytes())
    assert not is_official_inquiry(inquiries / "enhedslisten-slf.yaml", inquiries)
    assert is_official_inquiry(inquiries / "own.yaml", inquiries)
    assert not is_official_inquiry(impostor, inquiries)
    assert is_official_inquiry(INQUIRY)


def test_cli_answer_puts_a_foreign_inquiry_in_drafts(
    published_output: Path, impostor: Path, capsys: pytest.CaptureFixture
) -> None:
    from slf_warehouse.cli import main

    assert main(["answer", "enhedslisten-slf", "--out", str(published_output)]) == 0
    official = (published_output / "answers" / "enhedslisten-slf.pdf").read_bytes()
    capsys.readouterr()
    assert main(["answer", str(impostor), "--out", str(published_output)]) == 0
    captured = capsys.readouterr()
    assert str(published_output / "answers" / "drafts" / "enhedslisten-slf.pdf") in captured.out
    assert "not official" in captured.err
    assert (published_output / "answers" / "enhedslisten-slf.pdf").read_bytes() == official
    assert (
        main(
            [
                "answer",
                str(impostor),
                "--out",
                str(published_output),
                "--to",
                str(published_output / "answers"),
            ]
        )
        == 2
    )
    assert "only inquiry files in" in capsys.readouterr().err
