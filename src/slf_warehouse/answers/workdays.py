"""Working days in Aarhus Kommune, and the deadline of a 10-dages forespørgsel.

A council member's 10-dages forespørgsel is answered within ten working days of its receipt. The
day it is received is day 0; the deadline is the tenth working day after it. A working day is a
Monday–Friday that is not a day off:

Public holidays (helligdage, fixed by law; the Easter-based ones computed from Easter Sunday):

- nytårsdag (1 January), skærtorsdag, langfredag, påskedag, 2. påskedag, Kristi himmelfartsdag,
  pinsedag, 2. pinsedag, juledag (25 December), 2. juledag (26 December);
- store bededag (the fourth Friday after Easter) up to and including 2023 only: Folketinget
  abolished it as a public holiday from 2024 (the law was passed in February 2023).

Days off in the municipality although they are not public holidays — our choice: the
administration that writes the answer is closed on them (grundlovsdag is a day off for most
municipal staff under their agreements, as are Christmas Eve and New Year's Eve), so they are not
days an answer can be worked on:

- grundlovsdag (5 June), juleaftensdag (24 December) and nytårsaftensdag (31 December).

``DAYS_OFF_IN_THE_MUNICIPALITY`` lists them; removing one there changes every deadline computed
after it, and the tests pin the choice.
"""

from __future__ import annotations

from datetime import date, timedelta

STORE_BEDEDAG_LAST_YEAR = 2023
DAYS_OFF_IN_THE_MUNICIPALITY = {(6, 5): "Grundlovsdag", (12, 24): "Juleaftensdag", (12, 31): "Nytårsaftensdag"}
ANSWER_WORKING_DAYS = 10


def easter_sunday(year: int) -> date:
    """Easter Sunday in the Gregorian calendar (the anonymous algorithm, Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l) // 451
    month, day = divmod(h + l - 7 * m + 114, 31)
    return date(year, month, day + 1)


def public_holidays(year: int) -> dict[date, str]:
    """The Danish public holidays (helligdage) of a year."""
    easter = easter_sunday(year)
    days = {
        date(year, 1, 1): "Nytårsdag",
        easter - timedelta(days=3): "Skærtorsdag",
        easter - timedelta(days=2): "Langfredag",
        easter: "Påskedag",
        easter + timedelta(days=1): "2. påskedag",
        easter + timedelta(days=39): "Kristi himmelfartsdag",
        easter + timedelta(days=49): "Pinsedag",
        easter + timedelta(days=50): "2. pinsedag",
        date(year, 12, 25): "Juledag",
        date(year, 12, 26): "2. juledag",
    }
    if year <= STORE_BEDEDAG_LAST_YEAR:
        days[easter + timedelta(days=26)] = "Store bededag"
    return dict(sorted(days.items()))


def days_off(year: int) -> dict[date, str]:
    """Public holidays and the municipality's other days off, by date."""
    days = public_holidays(year)
    for (month, day), name in DAYS_OFF_IN_THE_MUNICIPALITY.items():
        days.setdefault(date(year, month, day), name)
    return dict(sorted(days.items()))


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in days_off(day.year)


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
