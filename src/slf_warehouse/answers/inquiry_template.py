"""`slf inquiry new NAME`: a new inquiry file from a commented template that `slf inquiry check` accepts.

The dates are today's: received today, the deadline left out (computed as ten working days later),
the window the last whole budget year. Two example questions show the two kinds of answer: a figure
printed in the text, and a table of a table figure under the text.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

NAME = re.compile(r"[a-z0-9][a-z0-9-]*")

TEMPLATE = """\
# {name}: a 10-dages forespørgsel and its answer. Check it with `slf inquiry check {path}`,
# render it with `slf answer {name} --out output` (after a refresh has published a warehouse).
#
# Answer texts are Jinja2 templates printed as plain text: a blank line starts a paragraph, a line
# beginning with "- " is a bullet. {{{{ figure }}}} prints a figure formatted ("26 mio. kr."),
# {{{{ figure.value }}}} the raw number. `slf figures` lists every figure with its meaning and today's
# value; the helpers (antal, maaned, periode_slut, opremsning …) are in answers/templating.py.
kind: 10-dages forespørgsel
party: Partinavn                # the party that asked
# member: Navn Navnesen         # the council member who asked (the party when left out)
received: {received}            # the day the inquiry arrived (YYYY-MM-DD)
# deadline: computed as ten working days after received (weekends and holidays skipped); write
#   it only to have it checked
# answer_date: {received}       # the letter's date (the deadline when left out)
status: udkast                  # "udkast" marks every page as a draft; "endelig" for the final letter
subject: Stærkere Læringsfællesskaber
signatories:                    # at least one: who signs the letter
  - name: Fornavn Efternavn
    title: Rådmand
window:                         # the period the figures cover
  start: {window_start}
  end: {window_end}

questions:                      # numbered 1, 2, 3 … in order
  - number: 1
    question: Hvor mange midler er der afsat til SLF i perioden?
    # A figure in the text.
    answer: |
      I perioden fra {{{{ maaned(window.start) }}}} til {{{{ maaned(window.end) }}}} er der afsat
      {{{{ allocated_total }}}} til Stærkere Læringsfællesskaber.

  - number: 2
    question: Hvad er udgifterne til kompetenceaktiviteter pr. type?
    # A table figure: the text, then the table under it (tables: and charts:, see answers/exhibits.py).
    answer: |
      Udgifterne til de fælles kompetenceaktiviteter i perioden var i alt {{{{ activity_costs_total }}}}.
      Tabellen viser dem pr. aktivitetstype.
    tables:
      - figure: activity_costs_by_type
        caption: Udgifter pr. aktivitetstype
        headings: {{value: "Udgift, kr."}}
"""


def new_inquiry_text(name: str, path: Path, today: date | None = None) -> str:
    today = today or date.today()
    year = today.year - 1
    return TEMPLATE.format(
        name=name,
        path=path,
        received=today.isoformat(),
        window_start=f"{year}-01-01",
        window_end=f"{year}-12-31",
    )


def write_new_inquiry(name: str, inquiries_dir: Path, today: date | None = None) -> Path:
    """``inquiries_dir/<name>.yaml`` from the template; ValueError for a bad or taken name."""
    name = name.removesuffix(".yaml")
    if not NAME.fullmatch(name):  # match() would let "x\n" (a name ending in a newline) through
        raise ValueError(
            f"{name!r} is not a usable inquiry name: use lower-case letters, digits and "
            f"hyphens, e.g. 'venstre-slf-2026'"
        )
    path = inquiries_dir / f"{name}.yaml"
    if path.exists():
        raise ValueError(f"{path} exists already: choose another name (nothing was written)")
    inquiries_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(new_inquiry_text(name, path, today), encoding="utf-8")
    return path
