"""Working days in Aarhus Kommune, and the deadline of a 10-dages forespørgsel.

A council member's 10-dages forespørgsel is answered within ten working days of its receipt. The
day it is received is day 0; the deadline is the tenth working day after it. A working day is a
Monday–Friday that is not a day off:

Public holidays (helligdage, fixed by law) come from the ``holidays`` package's calendar of
Denmark: nytårsdag, skærtorsdag, langfredag, påskedag, 2. påskedag, Kristi himmelfartsdag,
pinsedag, 2. pinsedag, juledag, 2. juledag, and store bededag up to and including 2023 only
(Folketinget abolished it as a public holiday from 2024; the package knows the law).

Days off in the municipality although they are not public holidays — our choice: the
administration that writes the answer is closed on them (grundlovsdag is a day off for most
municipal staff under their agreements, as are Christmas Eve and New Year's Eve), so they are not
days an answer can be worked on:

- grundlovsdag (5 June), juleaftensdag (24 December) and nytårsaftensdag (31 December).

``DAYS_OFF_IN_THE_MUNICIPALITY`` lists them; removing one there changes every deadline computed
after it, and the tests pin the choice. (The package's "optional" Danish category is not used for
them: it also holds 1 May, which is a working day here.)
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays

DAYS_OFF_IN_THE_MUNICIPALITY = {
    (6, 5): "Grundlovsdag",
    (12, 24): "Juleaftensdag",
    (12, 31): "Nytårsaftensdag",
}
ANSWER_WORKING_DAYS = 10
# The package writes the second day of a feast out ("Anden påskedag"); letters and the council's
# calendar write the ordinal ("2. påskedag").
_SECOND_DAY_PREFIX = ("Anden ", "2. ")


@lru_cache(maxsize=64)
def _public_holidays(year: int) -> tuple[tuple[date, str], ...]:
    # Cached per year: a deadline asks about every day it counts. A tuple, so no caller can change
    # the cached calendar.
    calendar = holidays.country_holidays("DK", years=year, language="da")
    return tuple(sorted((day, name.replace(*_SECOND_DAY_PREFIX)) for day, name in calendar.items()))


def easter_sunday(year: int) -> date:
    """Easter Sunday (påskedag), as the Danish calendar has it."""
    return next(day for day, name in _public_holidays(year) if name == "Påskedag")


def public_holidays(year: int) -> dict[date, str]:
    """The Danish public holidays (helligdage) of a year."""
    return dict(_public_holidays(year))


@lru_cache(maxsize=64)
def _days_off_set(year: int) -> frozenset[date]:
    return frozenset(days_off(year))


def days_off(year: int) -> dict[date, str]:
    """Public holidays and the municipality's other days off, by date."""
    days = public_holidays(year)
    for (month, day), name in DAYS_OFF_IN_THE_MUNICIPALITY.items():
        days.setdefault(date(year, month, day), name)
    return dict(sorted(days.items()))


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _days_off_set(day.year)


def add_working_days(start: date, n: int) -> date:
    """The n-th working day after ``start`` (``start`` itself is day 0, whatever it is)."""
    if n < 0:
        raise ValueError("n must not be negative")
    day = start
    while n:
        day += timedelta(days=1)
        if is_working_day(day):
            n -= 1
    return day


def working_days_between(start: date, end: date) -> int:
    """How many working days lie after ``start`` up to and including ``end``."""
    count, day = 0, start
    while day < end:
        day += timedelta(days=1)
        count += is_working_day(day)
    return count


def answer_deadline(received: date, working_days: int = ANSWER_WORKING_DAYS) -> date:
    """The deadline of an inquiry received on ``received``: its ``working_days``-th working day after."""
    return add_working_days(received, working_days)
