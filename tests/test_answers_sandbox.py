"""An inquiry's answer texts cannot reach outside the letter, change a figure, or run without limits.

Each attack is an answer text (question 5 of the real inquiry, replaced), rendered against a small
seed warehouse; a tiny HTTP server on loopback records whether anything was fetched, and the PDF
(when one is written) is read back with pdfdetach and pypdf.
"""

from __future__ import annotations

import copy
import http.server
import resource
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from test_answers_render import INQUIRY, PROJECT, SEED, build_warehouse, pdf_text

KEY = PROJECT / ".slf-pseudonym-key"
GOOD = yaml.safe_load(INQUIRY.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_warehouse(tmp_path_factory.mktemp("sandbox") / "wh.duckdb", SEED)


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stands in for the pseudonym key or a payroll file: a local file no letter may carry."""
    path = tmp_path_factory.mktemp("secret") / ".slf-pseudonym-key"
    path.write_text("k3y-that-must-never-leave-the-server\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def seed_letter(tmp_path_factory: pytest.TempPathFactory, warehouse: Path):
    """The real inquiry rendered once with the project's templates: the tests below only read it."""
    return render(warehouse, INQUIRY, tmp_path_factory.mktemp("seed-letter") / "out")


@pytest.fixture()
def server():
    """An HTTP server on 127.0.0.1 that records every request path."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    # shutdown() waits for the loop's next poll: 0,5 s by default, at every test's teardown
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield httpd.server_port, hits
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


class _LiteralBlocks(yaml.SafeDumper):
    """Multi-line answers as `answer: |` blocks, as the inquiry files are written."""


_LiteralBlocks.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar(
        "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None
    ),
)


def inquiry_with_answer(tmp_path: Path, answer: str, name: str = "attack.yaml") -> Path:
    data = copy.deepcopy(GOOD)
    data["questions"][4]["answer"] = answer
    path = tmp_path / name
    path.write_text(
        yaml.dump(data, Dumper=_LiteralBlocks, allow_unicode=True, sort_keys=False, width=1000),
        encoding="utf-8",
    )
    return path


def attachments(pdf: Path) -> str:
    return subprocess.run(["pdfdetach", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout


def render(warehouse: Path, inquiry: Path, out: Path, **kwargs):
    from slf_warehouse.answers.render import render_inquiry

    return render_inquiry(warehouse, inquiry, out, **kwargs)


# --- 1. no local files, no URLs ----------------------------------------------------------------------


def attacks(secret: Path, port: int) -> dict[str, str]:
    link = f'<link rel="attachment" href="file://{secret}">'
    # Jinja's own braces stay as written: the values are joined in, not formatted (no brace doubling)
    base = f"http://127.0.0.1:{port}"
    return {
        "safe filter": "{{ '" + link + "' | safe }}",
        "safe filter block": "{% filter safe %}{{ '" + link + "' }}{% endfilter %}",
        "autoescape off": "{% autoescape false %}{{ '" + link + "' }}{% endautoescape %}",
        "image": "{{ '<img src=\"" + base + "/img\">' | safe }}",
        "css url": "{{ '<p style=\"background: url(" + base + "/css)\">x</p>' | safe }}",
        "urlize": "{{ '" + base + "/link' | urlize }}",
    }


@pytest.mark.parametrize(
    "attack", ["safe filter", "safe filter block", "autoescape off", "image", "css url", "urlize"]
)
def test_markup_constructs_are_refused_at_load_with_file_and_line(
    attack: str, tmp_path: Path, warehouse: Path, secret_file: Path, server
) -> None:
    from slf_warehouse.answers.inquiry import InquiryError, load_inquiry

    port, hits = server
    inquiry = inquiry_with_answer(tmp_path, "Første linje.\n" + attacks(secret_file, port)[attack] + "\n")
    line = (
        next(
            n
            for n, text in enumerate(inquiry.read_text(encoding="utf-8").splitlines(), 1)
            if "Første linje." in text
        )
        + 1
    )  # the attack is on the answer's second line
    with pytest.raises(InquiryError) as e:
        load_inquiry(inquiry)
    message = str(e.value)
    assert f"attack.yaml:{line}: questions[4].answer (question 5), line 2 of the answer" in message
    assert ("not allowed" in message) and (
        "safe" in message or "autoescape" in message or "urlize" in message
    )
    with pytest.raises(InquiryError):
        render(warehouse, inquiry, tmp_path / "out")
    assert not (tmp_path / "out").exists() and hits == []


def test_markup_made_another_way_is_caught_after_rendering(tmp_path: Path, warehouse: Path, server) -> None:
    """Not on the load-time list: a block `set` captures a figure span as markup and `replace`
    edits it into an image tag. The rendered text is checked, so it still never reaches WeasyPrint."""
    from slf_warehouse.answers.inquiry import InquiryError

    port, hits = server
    answer = (
        "{% set x %}{{ tal(1) }}{% endset %}"
        "{{ x | replace('span class=', 'img src=http://127.0.0.1:" + str(port) + "/x alt=') }}"
    )
    with pytest.raises(
        InquiryError,
        match=r"attack.yaml: questions\[4\].answer \(question 5\): the answer renders "
        r"to an HTML tag <img>; answers are plain text",
    ):
        render(warehouse, inquiry_with_answer(tmp_path, answer), tmp_path / "out")
    assert hits == [] and not (tmp_path / "out").exists()


def test_helper_markup_cannot_be_edited_or_sliced(tmp_path: Path, warehouse: Path, server) -> None:
    from slf_warehouse.answers.inquiry import InquiryError

    port, hits = server
    for answer in (
        "{{ tal(1).replace('span class=', 'img src=http://127.0.0.1:" + str(port) + "/x alt=') }}",
        "{{ tal(1)[:1] ~ 'img src=http://127.0.0.1:" + str(port) + "/x' }}",
    ):
        with pytest.raises(
            InquiryError,
            match=r"question 5\): (SecurityError: access to attribute 'replace' of "
            r"'Markup' object is unsafe|the answer renders to an HTML tag <img>)",
        ):
            render(warehouse, inquiry_with_answer(tmp_path, answer), tmp_path / "out")
    assert hits == []


def letter_templates_with(tmp_path: Path, extra_head: str) -> Path:
    """The project's letter templates with extra markup in <head>: what a template bug would send."""
    templates = tmp_path / "templates"
    shutil.copytree(PROJECT / "report_templates", templates)
    letter = templates / "letter.html.j2"
    letter.write_text(
        letter.read_text(encoding="utf-8").replace("</head>", extra_head + "\n</head>"), encoding="utf-8"
    )
    return templates


def test_the_letter_fetches_only_the_projects_own_files(tmp_path: Path, warehouse: Path, seed_letter) -> None:
    """A file inside the templates folder is served (here as an attachment, read back with pdfdetach)."""
    templates = letter_templates_with(tmp_path, '<link rel="attachment" href="bilag.txt">')
    (templates / "bilag.txt").write_text("et bilag fra projektet\n", encoding="utf-8")
    answer = render(warehouse, INQUIRY, tmp_path / "out", templates_dir=templates)
    assert "bilag.txt" in attachments(answer.pdf_path)
    assert "0 embedded files" in attachments(seed_letter.pdf_path)


@pytest.mark.parametrize(
    "kind", ["file attachment", "symlink in templates", "http image", "css url", "data uri"]
)
def test_any_other_url_is_refused_and_logged_without_the_url(
    kind: str, tmp_path: Path, warehouse: Path, secret_file: Path, server, caplog: pytest.LogCaptureFixture
) -> None:
    from slf_warehouse.answers.inquiry import InquiryError

    port, hits = server
    head = {
        "file attachment": f'<link rel="attachment" href="file://{secret_file}">',
        "symlink in templates": '<link rel="attachment" href="key-link">',
        "http image": f'<style>body {{ background: url("http://127.0.0.1:{port}/bg?leak=Søren") }}</style>',
        "css url": f'<link rel="stylesheet" href="http://127.0.0.1:{port}/extra.css">',
        "data uri": '<link rel="attachment" href="data:text/plain;base64,aGVq">',
    }[kind]
    templates = letter_templates_with(tmp_path, head)
    (templates / "key-link").symlink_to(secret_file)
    with (
        caplog.at_level("WARNING"),
        caplog.at_level("INFO", logger="weasyprint.progress"),  # the rendering's steps
        pytest.raises(
            InquiryError,
            match=r"outside .*; only the project's own "
            r"files are served; no letter was written",
        ),
    ):
        render(warehouse, INQUIRY, tmp_path / "out", templates_dir=templates)
    assert hits == []
    assert not (tmp_path / "out").exists()
    refusals = [r.getMessage() for r in caplog.records if r.name == "slf_warehouse.rendering.fetcher"]
    assert len(refusals) == 1 and "refused to fetch" in refusals[0]
    assert (
        str(secret_file) not in refusals[0] and "Søren" not in refusals[0] and "127.0.0.1" not in refusals[0]
    )
    steps = [r.getMessage() for r in caplog.records if r.name == "weasyprint.progress"]
    assert steps, "WeasyPrint logs its steps"
    if "attachment" in head:  # refused before the pages are laid out, not when the PDF is written
        assert not [s for s in steps if "layout" in s], steps


def test_seed_letter_still_renders_with_no_attachment(seed_letter) -> None:
    answer = seed_letter
    text = pdf_text(answer.pdf_path)
    assert "afsat i alt 26 mio. kr." in text and "A.P. Møller Fonden på 6,6 mio. kr." in text
    assert "0 embedded files" in attachments(answer.pdf_path)


# --- 1. no template can change a figure -----------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        "{{ allocated_by_source.rows[0].keys.update({'funding_source': 'APMF'}) }}",
        "{% set r = allocated_by_source.rows %}{{ r.append(r[0]) }}",
        "{{ inquiry.update({'party': 'x'}) }}",
        "{% set l = [1] %}{{ l.append(2) }}",
    ],
)
def test_templates_cannot_mutate_anything(answer: str, tmp_path: Path, warehouse: Path) -> None:
    from slf_warehouse.answers.inquiry import InquiryError

    with pytest.raises(
        InquiryError, match=r"question 5\): (SecurityError|UndefinedError).*(unsafe|no attribute)"
    ):
        render(warehouse, inquiry_with_answer(tmp_path, answer), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_figure_objects_are_read_only(seed_letter) -> None:
    answer = seed_letter
    table = answer.figures["allocated_by_source"].result
    row = table.rows[0]
    with pytest.raises(TypeError):
        row.keys["funding_source"] = "APMF"  # type: ignore[index]
    with pytest.raises(AttributeError):
        row.keys.update({"funding_source": "APMF"})  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        table.rows.append(row)  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        answer.figures["allocated_total"].params["window_start"] = None  # type: ignore[index]
    assert [r.value.text for r in table.rows] == [
        "8,7 mio. kr.",
        "6,6 mio. kr.",
        "5,8 mio. kr.",
        "4,9 mio. kr.",
    ]


# --- 5. limits ---------------------------------------------------------------------------------------


def test_a_huge_string_stops_at_the_memory_limit(tmp_path: Path, warehouse: Path) -> None:
    from slf_warehouse.answers.inquiry import InquiryError

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    for power in (8, 9):
        with pytest.raises(InquiryError) as e:
            render(
                warehouse,
                inquiry_with_answer(tmp_path, '{{ "x" * 10**' + str(power) + " }}"),
                tmp_path / "out",
            )
        message = str(e.value)
        assert "attack.yaml: questions[4].answer (question 5): stopped:" in message
        if power == 9:
            assert "more than the memory limit of 512 MB" in message
        else:  # 100 MB fits in the child once; escaping and joining it does not, or its length is refused
            assert "memory limit of 512 MB" in message or "the limit is 200.000" in message
    assert time.monotonic() - started < 30
    assert (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024
    )  # KB: never in this process
    assert not (tmp_path / "out").exists()


def test_nested_loops_stop_at_the_time_limit(tmp_path: Path, warehouse: Path) -> None:
    from slf_warehouse.answers.inquiry import InquiryError
    from slf_warehouse.answers.sandbox_run import RenderLimits

    answer = "{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    with pytest.raises(
        InquiryError,
        match=r"attack.yaml: questions\[4\].answer \(question 5\): stopped: rendering "
        r"took longer than the limit of 1 s",
    ):
        # 1 s: the loops burn CPU until stopped, and RLIMIT_CPU counts whole seconds
        render(
            warehouse, inquiry_with_answer(tmp_path, answer), tmp_path / "out", limits=RenderLimits(seconds=1)
        )
    assert time.monotonic() - started < 10


def test_the_rendering_process_gets_no_secrets(
    tmp_path: Path, warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child's environment is minimal: the service's key is not in it (and nothing could print it)."""
    from slf_warehouse.answers.sandbox_run import _child_environment

    monkeypatch.setenv("SLF_PSEUDONYM_KEY", "k3y")
    assert "SLF_PSEUDONYM_KEY" not in _child_environment()
