"""Inquiry files: the real one loads; broken ones fail with the file and the field named."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from slf_warehouse.answers.inquiry import InquiryError, load_inquiry

PROJECT = Path(__file__).resolve().parents[1]
INQUIRY = PROJECT / "inquiries" / "enhedslisten-slf.yaml"
GOOD = yaml.safe_load(INQUIRY.read_text(encoding="utf-8"))


def write(tmp_path: Path, data: dict, name: str = "broken.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def changed(**fields) -> dict:
    data = copy.deepcopy(GOOD)
    for key, value in fields.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def test_the_enhedslisten_inquiry_loads() -> None:
    loaded = load_inquiry(INQUIRY)
    inq = loaded.inquiry
    assert inq.party == "Enhedslisten" and inq.member == "Enhedslisten"
    assert inq.subject == "Stærkere Læringsfællesskaber"
    assert inq.heading == "Svar på 10-dages forespørgsel fra Enhedslisten om Stærkere Læringsfællesskaber"
    assert [(s.name, s.title) for s in inq.signatories] == [
        ("Thomas Medom", "Rådmand"),
        ("Martin Østergaard Christensen", "Direktør"),
    ]
    assert (str(inq.window.start), str(inq.window.end)) == ("2022-01-01", "2024-06-30")
    assert [q.number for q in inq.questions] == list(range(1, 11))
    assert inq.received <= inq.letter_date <= inq.deadline
    # Questions 1–4, 6 and 8 carry figures; the others are authored text.
    assert set(loaded.figure_names) >= {
        "allocated_total",
        "allocated_by_source",
        "allocated_apmf",
        "spent_salaries",
        "spent_competence_activities",
        "staff_learning_partners",
        "staff_project_employees",
        "staff_section_leaders",
        "programme_funds_local_units",
        "survey_latest_year",
        "survey_r_squared",
    }
    for q in inq.questions:
        if q.number in (5, 7, 9, 10):
            assert "{{" not in q.answer and "{%" not in q.answer


def test_member_defaults_to_party(tmp_path: Path) -> None:
    assert load_inquiry(write(tmp_path, changed(member=None))).inquiry.member == "Enhedslisten"


def test_unknown_figure(tmp_path: Path) -> None:
    data = changed()
    data["questions"][0]["answer"] = "I alt {{ allocated_totl }}."
    with pytest.raises(InquiryError) as e:
        load_inquiry(write(tmp_path, data))
    msg = str(e.value)
    assert "broken.yaml" in msg and "questions[0].answer" in msg and "'allocated_totl'" in msg
    assert "allocated_total" in msg  # the known names are listed


def test_unknown_appendix_figure(tmp_path: Path) -> None:
    with pytest.raises(InquiryError, match=r"broken.yaml: appendix_figures\[1\]: unknown figure 'nope'"):
        load_inquiry(write(tmp_path, changed(appendix_figures=["staff_latest_month", "nope"])))


@pytest.mark.parametrize("signatories", [None, []])
def test_missing_signatory(tmp_path: Path, signatories) -> None:
    with pytest.raises(InquiryError, match=r"broken.yaml: signatories: .*signatory"):
        load_inquiry(write(tmp_path, changed(signatories=signatories)))


def test_signatory_without_title(tmp_path: Path) -> None:
    data = changed(
        signatories=[{"name": "Thomas Medom", "title": "Rådmand"}, {"name": "Martin Østergaard Christensen"}]
    )
    with pytest.raises(InquiryError, match=r"broken.yaml: signatories\[1\].title: missing"):
        load_inquiry(write(tmp_path, data))


def test_bad_date(tmp_path: Path) -> None:
    with pytest.raises(InquiryError, match=r"broken.yaml: received: '2024-13-45' is not a valid date"):
        load_inquiry(write(tmp_path, changed(received="2024-13-45")))


def test_bad_window_date(tmp_path: Path) -> None:
    with pytest.raises(InquiryError, match=r"broken.yaml: window.end: 'medio 2024' is not a valid date"):
        load_inquiry(write(tmp_path, changed(window={"start": "2022-01-01", "end": "medio 2024"})))


def test_window_end_before_start(tmp_path: Path) -> None:
    with pytest.raises(
        InquiryError, match=r"broken.yaml: window: the window ends \(2021-06-30\) before it starts"
    ):
        load_inquiry(write(tmp_path, changed(window={"start": "2022-01-01", "end": "2021-06-30"})))


def test_deadline_before_received(tmp_path: Path) -> None:
    with pytest.raises(InquiryError, match=r"deadline 2024-08-01 is before the inquiry was received"):
        load_inquiry(write(tmp_path, changed(deadline="2024-08-01")))


def test_unknown_field(tmp_path: Path) -> None:
    with pytest.raises(InquiryError, match=r"broken.yaml: signatorie: unknown field"):
        load_inquiry(write(tmp_path, changed(signatorie=[])))


def test_question_numbering(tmp_path: Path) -> None:
    data = changed()
    data["questions"][2]["number"] = 7
    with pytest.raises(InquiryError, match=r"numbered 1, 2, 3"):
        load_inquiry(write(tmp_path, data))


def test_template_syntax_error(tmp_path: Path) -> None:
    data = changed()
    data["questions"][3]["answer"] = "Der er {% if staff_learning_partners %} ansat."
    path = write(tmp_path, data)
    line = next(
        n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if "Der er {%" in text
    )
    with pytest.raises(
        InquiryError,
        match=rf"broken.yaml:{line}: questions\[3\].answer \(question 4\): template "
        r"error on line 1",
    ):
        load_inquiry(path)


def test_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("party: [unclosed", encoding="utf-8")
    with pytest.raises(InquiryError, match=r"x.yaml: not valid YAML"):
        load_inquiry(path)
    with pytest.raises(InquiryError, match=r"no such inquiry file"):
        load_inquiry(tmp_path / "missing.yaml")


# --- answer texts: plain text in a sandbox -----------------------------------------------------------


def _render_answers(tmp_path: Path, answer: str):
    from slf_warehouse.answers.render import render_answers_html

    data = changed(appendix_figures=[])
    data["questions"] = [{"number": 1, "question": "Spørgsmål <1>?", "answer": answer}]
    return render_answers_html(load_inquiry(write(tmp_path, data)), {})


def test_literal_text_is_escaped(tmp_path: Path) -> None:
    [q] = _render_answers(tmp_path, 'Sol & Måne <b>fed</b> "citat"\n\n- punkt <i>\n  fortsat\n- to')
    html = str(q["answer"])
    assert html == (
        "<p>Sol &amp; Måne &lt;b&gt;fed&lt;/b&gt; &#34;citat&#34;</p>\n"
        "<ul><li>punkt &lt;i&gt; fortsat</li><li>to</li></ul>"
    )


def test_helpers_and_window(tmp_path: Path) -> None:
    [q] = _render_answers(
        tmp_path,
        "Fra {{ window.start.year }} til {{ periode_slut(window.end) }}: "
        '{{ antal(2, "team", "teams", intetkoen=True) }}, {{ antal(1, "team", "teams", '
        'intetkoen=True) }}, {{ opremsning(["a & b", "c"]) }}.',
    )
    assert str(q["answer"]) == (
        '<p>Fra 2022 til medio 2024: <span class="figure">to teams</span>, '
        '<span class="figure">et team</span>, a &amp; b og c.</p>'
    )


def test_sandbox_blocks_internals(tmp_path: Path) -> None:
    with pytest.raises(InquiryError, match=r"question 1"):
        _render_answers(tmp_path, "{{ window.__class__.__mro__ }}")
    with pytest.raises(InquiryError, match=r"question 1"):
        _render_answers(tmp_path, "{{ window.start.__class__.mro() }}")
    with pytest.raises(InquiryError, match=r"range"):
        _render_answers(tmp_path, "{{ range(10000000) | list | length }}")
