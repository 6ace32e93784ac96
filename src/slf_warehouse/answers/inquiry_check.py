"""`slf inquiry check`: every problem in an inquiry file, each with its line, without rendering.

``load_inquiry`` stops at the first problem (rendering needs a valid file); an answer writer fixing a
new file wants them all at once. The same checks run here (``inquiry.Inquiry`` for the fields, the
dates and the deadline; ``inquiry.content_problems`` for the templates' syntax, the sandbox rules of
``template_check``, the figure names, tables and charts), only collected. Nothing is evaluated and
no warehouse is opened. A file that is not UTF-8 or not YAML is reported before the inquiry model is
imported (``inquiry_yaml``), in a tenth of the time.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import yaml

from slf_warehouse.answers.inquiry_yaml import Problem, parse_yaml

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

# A check across fields names the field its message starts with ("deadline 2024-09-10 is not …").
_CROSS_FIELD_NAMES = ("deadline", "answer_date", "questions", "received", "window")


def _validation_line(text: str, error: ErrorDetails) -> int | None:
    from slf_warehouse.answers.inquiry import yaml_line

    loc = tuple(p for p in error["loc"] if p != "function-after")
    if not loc:
        message = error["msg"].removeprefix("Value error, ")
        loc = next(((name,) for name in _CROSS_FIELD_NAMES if message.startswith(name)), ())
    if error["type"] == "missing":
        loc = loc[:-1]  # a missing field: the line of the mapping it is missing from
    return yaml_line(text, loc) if loc else None


def check_inquiry_file(path: Path) -> list[Problem]:
    """Every problem found in the inquiry file at ``path``, in file order; empty when it is valid."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [Problem(None, f"{path}: no such inquiry file")]
    except IsADirectoryError:
        return [Problem(None, f"{path}: a folder, not an inquiry file")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        bad_line = raw[: e.start].count(b"\n") + 1
        return [Problem(bad_line, f"{path}:{bad_line}: not UTF-8 text (byte {e.start})")]
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(e, "problem", None) or str(e)
        return [
            Problem(
                line, f"{path}:{line}: not valid YAML: {what}" if line else f"{path}: not valid YAML: {what}"
            )
        ]
    if not isinstance(data, dict):
        return [Problem(1, f"{path}:1: expected a mapping of fields at the top level")]
    # the model, its templates and the holiday calendar: only for a file that is YAML at all
    from pydantic import ValidationError

    from slf_warehouse.answers.inquiry import Inquiry, content_problems, describe_error

    problems: list[Problem] = []
    inquiry: Any
    try:
        inquiry = Inquiry.model_validate(data)
    except ValidationError as e:
        for error in e.errors():
            placed = _validation_line(text, error)
            problems.append(
                Problem(
                    placed,
                    f"{path}:{placed}: {describe_error(error)}"
                    if placed
                    else f"{path}: {describe_error(error)}",
                )
            )
        inquiry = _valid_parts(data)  # the templates of the questions that did validate are checked too
    problems.extend(_placed(p, path) for p in content_problems(path, text, inquiry, []))
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0))


def _valid_parts(data: dict[str, Any]) -> SimpleNamespace:
    """The questions (None where one is invalid: indices stay the file's) and appendix figures of an
    inquiry whose fields did not all validate."""
    from pydantic import ValidationError

    from slf_warehouse.answers.inquiry import Question

    questions: list[Question | None] = []
    for q in data.get("questions") or [] if isinstance(data.get("questions"), list) else []:
        try:
            questions.append(Question.model_validate(q))
        except ValidationError:
            questions.append(None)
    figures = data.get("appendix_figures")
    figures = [f for f in figures if isinstance(f, str)] if isinstance(figures, list) else []
    return SimpleNamespace(questions=questions, appendix_figures=figures)


def _placed(problem: Problem, path: Path) -> Problem:
    """The message with ``file:line`` when the line is known and the message names the file only."""
    plain = f"{path}: "
    if problem.line and problem.message.startswith(plain):
        return Problem(problem.line, f"{path}:{problem.line}: {problem.message.removeprefix(plain)}")
    return problem
