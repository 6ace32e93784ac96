"""An inquiry file (YAML): who asked, who signs, the period, and the questions with answer templates.

Answer texts are Jinja2 templates rendered in a sandbox. They are plain text, not HTML: every
character is printed as written. A blank line starts a new paragraph; lines beginning with "- "
are bullet points (an indented line continues the bullet). Figures are used by name:
``{{ allocated_total }}`` prints "26 mio. kr.", ``{{ allocated_total.value }}`` is the raw
number. The helper functions and filters are listed in ``templating.py``.

A question may show tables and charts of table figures under its answer (``tables:``,
``charts:``; see ``exhibits.py``).

The deadline is ten working days after the inquiry was received (``workdays.py``: weekends, Danish
public holidays, and grundlovsdag, juleaftensdag and nytårsaftensdag as municipal days off). Leave
``deadline`` out and it is computed; write it and it must be that day.

Loading checks everything that can be checked without a warehouse: the fields and dates, that
the window ends after it starts, the deadline, that every template compiles, that every name a
template uses is a known figure or helper, that no template uses a construct that would print
markup unescaped (``template_check.py``), and that every table and chart fits its figure.
Errors name the file and the field, and for a template its line in the file.

The file's SHA-256 is taken from the bytes that were parsed: the letter's appendix and the
figures sidecar name the exact inquiry text the answer was made from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator
from pydantic_core import ErrorDetails

from slf_warehouse.answers.exhibits import ChartSpec, ExhibitError, TableSpec, check_exhibit
from slf_warehouse.answers.figures import FIGURES
from slf_warehouse.answers.inquiry_yaml import InquiryError as InquiryError  # re-exported: its home
from slf_warehouse.answers.inquiry_yaml import Problem as Problem  # until now, imported from here
from slf_warehouse.answers.inquiry_yaml import compose_yaml, parse_yaml
from slf_warehouse.answers.template_check import names_used, refused_constructs
from slf_warehouse.answers.templating import HELPER_NAMES, AnswerSandbox, answer_environment
from slf_warehouse.answers.workdays import ANSWER_WORKING_DAYS, answer_deadline

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

# Names a template may use besides figure names (see templating.template_helpers).
CONTEXT_NAMES = frozenset({"window", "inquiry", *HELPER_NAMES})


class Signatory(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: NonEmpty
    title: NonEmpty
    # The signatory's Airflow login: the letter's approval is assigned to these users (approval.py).
    username: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")] | None = None


class Window(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end < self.start:
            raise ValueError(f"the window ends ({self.end}) before it starts ({self.start})")
        return self


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: int = Field(ge=1)
    question: NonEmpty
    answer: NonEmpty
    tables: list[TableSpec] = []
    charts: list[ChartSpec] = []


class Inquiry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: NonEmpty = "10-dages forespørgsel"
    party: NonEmpty
    member: NonEmpty | None = None  # the council member who asked; the party when not known
    received: date
    working_days: int = Field(
        ANSWER_WORKING_DAYS, ge=1, le=60
    )  # the answer is due this many working days later
    deadline: date | None = None  # computed from received when not given; checked when given
    answer_date: date | None = None  # the letter's date; the deadline when not given
    status: Literal["endelig", "udkast"] = "endelig"  # "udkast" marks every page as a draft
    subject: NonEmpty
    sender: NonEmpty = "Aarhus Kommune"
    department: NonEmpty = "Børn og Unge"
    signatories: list[Signatory] = Field(min_length=1)
    window: Window
    questions: list[Question] = Field(min_length=1)
    # Figures shown in the "Datagrundlag" although no answer prints them (e.g. the payroll month).
    appendix_figures: list[str] = []

    @model_validator(mode="after")
    def _consistent(self) -> Inquiry:
        if self.member is None:
            self.member = self.party
        due = answer_deadline(self.received, self.working_days)
        if self.deadline is None:
            self.deadline = due
        elif self.deadline < self.received:
            raise ValueError(f"deadline {self.deadline} is before the inquiry was received ({self.received})")
        elif self.deadline != due:
            raise ValueError(
                f"deadline {self.deadline} is not {self.working_days} working days after "
                f"{self.received} (received): that is {due} (weekends, public holidays, grundlovsdag, "
                "24 and 31 December skipped); leave deadline out to have it computed"
            )
        if self.answer_date is not None and self.answer_date < self.received:
            raise ValueError(
                f"answer_date {self.answer_date} is before the inquiry was received ({self.received})"
            )
        numbers = [q.number for q in self.questions]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"questions must be numbered 1, 2, 3 … in order; found {numbers}")
        return self

    @property
    def letter_date(self) -> date:
        return self.answer_date or self.due

    @property
    def due(self) -> date:
        """The deadline (always set after validation)."""
        assert self.deadline is not None
        return self.deadline

    @property
    def is_draft(self) -> bool:
        return self.status == "udkast"

    @property
    def heading(self) -> str:
        return f"Svar på {self.kind} fra {self.party} om {self.subject}"

    @property
    def parameters(self) -> dict[str, Any]:
        """The values figures' filters may bind."""
        return {
            "window_start": self.window.start,
            "window_end": self.window.end,
            "window_start_year": self.window.start.year,
            "window_end_year": self.window.end.year,
        }


@dataclass(frozen=True)
class LoadedInquiry:
    """A validated inquiry, its file (and the SHA-256 of the bytes read), and the figures its answers
    and appendix use (registry order)."""

    path: Path
    inquiry: Inquiry
    figure_names: list[str]
    sha256: str = ""


def _answer_line(text: str, index: int, template_line: int) -> int | None:
    """The file line of line ``template_line`` of ``questions[index].answer``: exact for a literal
    block (``answer: |``) and a one-line value; the line the answer starts on otherwise."""
    try:
        root: Any = compose_yaml(text)  # walked without checks: a wrong shape is caught below
        questions = next(v for k, v in root.value if k.value == "questions")
        answer = next(v for k, v in questions.value[index].value if k.value == "answer")
    except (yaml.YAMLError, StopIteration, AttributeError, IndexError, TypeError):
        return None
    first: int = answer.start_mark.line + 1  # 1-based line of the value's first character
    if answer.style == "|":
        value = str(answer.value)  # leading blank lines are stripped from the template, not the file
        skipped = value[: len(value) - len(value.lstrip())].count("\n")
        return first + skipped + template_line  # the text starts on the line after the "|"
    return first


def _loc(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(top level)"


def describe_error(error: ErrorDetails) -> str:
    """One pydantic validation error in the answer writer's words: the field and what is wrong with
    it (``load_inquiry`` and ``slf inquiry check`` both say it this way)."""
    field = _loc(tuple(p for p in error["loc"] if p not in ("function-after",)))
    kind = error["type"]
    value = error.get("input")
    if kind == "missing":
        if field == "signatories":
            return f"{field}: missing; the letter needs at least one signatory (name and title)"
        return f"{field}: missing"
    if kind in ("date_from_datetime_parsing", "date_parsing", "date_type", "date_from_datetime_inexact"):
        return f"{field}: {value!r} is not a valid date (write YYYY-MM-DD)"
    if kind == "too_short" and field in ("signatories", "questions"):
        return f"{field}: at least one {'signatory' if field == 'signatories' else 'question'} is required"
    if kind == "string_too_short":
        return f"{field}: must not be empty"
    if kind == "extra_forbidden":
        return f"{field}: unknown field"
    msg = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:  # a check across fields: its message names them ("deadline 2024-09-10 is …")
        return msg
    return f"{field}: {msg}"


def load_inquiry(path: Path | str) -> LoadedInquiry:
    """Read and validate an inquiry file; raise InquiryError naming the file and the field."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
        data = parse_yaml(text)
    except FileNotFoundError:
        raise InquiryError(f"{path}: no such inquiry file") from None
    except UnicodeDecodeError as e:
        raise InquiryError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except yaml.YAMLError as e:
        raise InquiryError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise InquiryError(f"{path}: expected a mapping of fields at the top level")
    try:
        inquiry = Inquiry.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(describe_error(err) for err in e.errors())
        raise InquiryError(f"{path}: {problems}") from None

    used: list[str] = []
    for problem in content_problems(path, text, inquiry, used):
        raise InquiryError(problem.message)
    order = list(FIGURES)  # the registry's order: stable, and grouped by subject
    return LoadedInquiry(path, inquiry, sorted(set(used), key=order.index), hashlib.sha256(raw).hexdigest())


def yaml_line(text: str, loc: tuple[Any, ...]) -> int | None:
    """The 1-based file line of the value at ``loc`` (keys and list indices), or of the deepest part
    of it that exists; None when the text does not parse."""
    try:
        node = compose_yaml(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            found = next(((k, v) for k, v in node.value if k.value == part), None)
            if found is None:
                break
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _unknown(names: list[str]) -> str:
    """The unknown names, a close known figure for a misspelt one, and the known figures."""
    import difflib

    hints = [
        f"did you mean {close[0]!r}?"
        for n in names
        if (close := difflib.get_close_matches(n, list(FIGURES), n=1, cutoff=0.75))
    ]
    return (
        f"unknown figure {', '.join(repr(n) for n in names)} "
        + (" ".join(hints) + " " if hints else "")
        + f"(known figures: {', '.join(FIGURES)})"
    )


def content_problems(path: Path, text: str, inquiry: Any, used: list[str]) -> Iterator[Problem]:
    """Every problem in the questions' templates, tables and charts and in ``appendix_figures``, in
    file order (a valid ``Inquiry``, or anything with ``questions`` (``None`` for one that did not
    validate) and ``appendix_figures``); the figures used are appended to ``used``."""
    env = answer_environment()
    for i, q in enumerate(inquiry.questions):
        if q is None:
            continue
        yield from _answer_problems(path, text, env, i, q, used)
        yield from _exhibit_problems(path, text, i, q, used)
    for i, name in enumerate(inquiry.appendix_figures):
        if name not in FIGURES:
            yield Problem(
                yaml_line(text, ("appendix_figures", i)), f"{path}: appendix_figures[{i}]: {_unknown([name])}"
            )
            continue
        used.append(name)


def _answer_problems(
    path: Path, text: str, env: AnswerSandbox, i: int, q: Question, used: list[str]
) -> Iterator[Problem]:
    """Question ``i``'s answer template: its syntax, refused constructs and unknown names."""
    from jinja2 import TemplateSyntaxError

    field = f"questions[{i}].answer (question {q.number})"
    try:
        ast = env.parse(q.answer)
    except TemplateSyntaxError as e:
        # nothing more to learn from this answer; its tables and charts are still checked
        yield Problem(
            _answer_line(text, i, e.lineno),
            f"{_where(path, text, i, e.lineno)}: {field}: template error on line {e.lineno}: {e.message}",
        )
        return
    for refused in refused_constructs(ast):
        yield Problem(
            _answer_line(text, i, refused.lineno),
            f"{_where(path, text, i, refused.lineno)}: {field}, line {refused.lineno} of the "
            f"answer: {refused.message}",
        )
    names = names_used(ast, env.globals.keys())
    unknown = [n for n in names if n not in FIGURES and n not in CONTEXT_NAMES]
    if unknown:
        yield Problem(_answer_line(text, i, 1), f"{path}: {field}: {_unknown(unknown)}")
    used.extend(n for n in names if n in FIGURES)


def _exhibit_problems(path: Path, text: str, i: int, q: Question, used: list[str]) -> Iterator[Problem]:
    """Question ``i``'s tables and charts: a known figure each, that the exhibit can show."""
    kinds: tuple[tuple[str, Sequence[TableSpec | ChartSpec]], ...] = (
        ("tables", q.tables),
        ("charts", q.charts),
    )
    for kind, exhibits in kinds:
        for j, exhibit in enumerate(exhibits):
            where = f"questions[{i}].{kind}[{j}] (question {q.number})"
            line = yaml_line(text, ("questions", i, kind, j))
            if exhibit.figure not in FIGURES:
                yield Problem(line, f"{path}: {where}: {_unknown([exhibit.figure])}")
                continue
            try:
                check_exhibit(exhibit, FIGURES[exhibit.figure])
            except ExhibitError as e:
                yield Problem(line, f"{path}: {where}: {e}")
                continue
            used.append(exhibit.figure)


def _where(path: Path, text: str, index: int, template_line: int | None) -> str:
    """``file:line`` of an answer template's line, or the file alone when it cannot be placed."""
    line = _answer_line(text, index, template_line or 1)
    return f"{path}:{line}" if line else str(path)
