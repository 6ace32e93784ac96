"""Working days and the 10-day deadline: dates checked by hand against a calendar.

Day 0 is the day the inquiry is received; the deadline is the tenth working day after it. Days off:
weekends, the public holidays (store bededag only up to 2023), and grundlovsdag, juleaftensdag and
nytårsaftensdag (the municipality's choice, documented in workdays.py).
"""

from __future__ import annotations

import copy
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from slf_warehouse.answers.inquiry import InquiryError, load_inquiry
from slf_warehouse.answers.workdays import (
    add_working_days,
    answer_deadline,
    days_off,
    easter_sunday,
    is_working_day,
    public_holidays,
    working_days_between,
)

PROJECT = Path(__file__).resolve().parents[1]
GOOD = yaml.safe_load((PROJECT / "inquiries" / "enhedslisten-slf.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (2000, date(2000, 4, 23)),
        (2019, date(2019, 4, 21)),
        (2022, date(2022, 4, 17)),
        (2023, date(2023, 4, 9)),
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2026, date(2026, 4, 5)),
        (2038, date(2038, 4, 25)),
    ],
)
def test_easter_sunday(year: int, easter: date) -> None:
    assert easter_sunday(year) == easter


def test_public_holidays_2024() -> None:
    assert public_holidays(2024) == {
        date(2024, 1, 1): "Nytårsdag",
        date(2024, 3, 28): "Skærtorsdag",
        date(2024, 3, 29): "Langfredag",
        date(2024, 3, 31): "Påskedag",
        date(2024, 4, 1): "2. påskedag",
        date(2024, 5, 9): "Kristi himmelfartsdag",
        date(2024, 5, 19): "Pinsedag",
        date(2024, 5, 20): "2. pinsedag",
        date(2024, 12, 25): "Juledag",
        date(2024, 12, 26): "2. juledag",
    }


def test_store_bededag_until_2023_only() -> None:
    assert public_holidays(2023)[date(2023, 5, 5)] == "Store bededag"
    assert date(2024, 4, 26) not in days_off(2024) and is_working_day(date(2024, 4, 26))
    assert "Store bededag" not in public_holidays(2025).values()


@pytest.mark.parametrize("year", range(2024, 2036))
def test_no_store_bededag_from_2024(year: int) -> None:
    # The fourth Friday after Easter: a day off up to 2023, a working day from 2024 on.
    fourth_friday = easter_sunday(year) + timedelta(days=26)
    assert fourth_friday.weekday() == 4
    assert "Store bededag" not in days_off(year).values()
    assert is_working_day(fourth_friday)


@pytest.mark.parametrize("year", [1990, 2000, 2015, 2022, 2023])
def test_store_bededag_before_2024(year: int) -> None:
    fourth_friday = easter_sunday(year) + timedelta(days=26)
    assert public_holidays(year)[fourth_friday] == "Store bededag"
    assert not is_working_day(fourth_friday)


def test_first_of_may_is_a_working_day() -> None:
    # Not a public holiday, and not one of the municipality's days off (the calendar package lists
    # it among Denmark's optional days: the project does not take those).
    assert is_working_day(date(2024, 5, 1)) and is_working_day(date(2025, 5, 1))


def test_municipal_days_off() -> None:
    off = days_off(2024)
    assert off[date(2024, 6, 5)] == "Grundlovsdag"
    assert off[date(2024, 12, 24)] == "Juleaftensdag"
    assert off[date(2024, 12, 31)] == "Nytårsaftensdag"
    assert date(2024, 6, 5) not in public_holidays(2024)  # not a public holiday, a day off here
    assert not is_working_day(date(2024, 6, 5))  # a Wednesday
    assert is_working_day(date(2024, 5, 10))  # the Friday after Kristi himmelfart is a working day


@pytest.mark.parametrize(
    ("received", "deadline"),
    [
        # Enhedslisten's inquiry: two ordinary weeks
        (date(2024, 8, 26), date(2024, 9, 9)),
        # received on a Saturday: counting starts on Monday
        (date(2024, 8, 24), date(2024, 9, 6)),
        # Easter 2024: skærtorsdag 28/3, langfredag 29/3 and 2. påskedag 1/4 are skipped
        (date(2024, 3, 22), date(2024, 4, 10)),
        (date(2024, 3, 27), date(2024, 4, 15)),
        # received on skærtorsdag itself
        (date(2024, 3, 28), date(2024, 4, 15)),
        # store bededag: a day off in 2023 (5/5), a working day in 2024 (26/4)
        (date(2023, 4, 28), date(2023, 5, 15)),
        (date(2024, 4, 19), date(2024, 5, 3)),
        # grundlovsdag (Wednesday 5/6/2024) is skipped
        (date(2024, 5, 29), date(2024, 6, 13)),
        # Christmas 2024: 24, 25, 26 and 31 December and 1 January are skipped
        (date(2024, 12, 18), date(2025, 1, 8)),
        # Christmas 2023: 24/12 was a Sunday; 25, 26/12 and 1/1 are skipped
        (date(2023, 12, 20), date(2024, 1, 8)),
    ],
)
def test_deadline_hand_checked(received: date, deadline: date) -> None:
    assert answer_deadline(received) == deadline
    assert working_days_between(received, deadline) == 10
    assert is_working_day(deadline)


def test_add_working_days_edges() -> None:
    assert add_working_days(date(2024, 3, 28), 0) == date(2024, 3, 28)
    assert add_working_days(date(2024, 3, 27), 1) == date(2024, 4, 2)
    with pytest.raises(ValueError):
        add_working_days(date(2024, 1, 1), -1)


# --- the inquiry schema ---------------------------------------------------------------------------


def _write(tmp_path: Path, **fields) -> Path:
    data = copy.deepcopy(GOOD)
    for key, value in fields.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = tmp_path / "inq.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_deadline_is_computed_when_absent(tmp_path: Path) -> None:
    inquiry = load_inquiry(
        _write(tmp_path, deadline=None, received="2024-03-22", answer_date="2024-04-09")
    ).inquiry
    assert inquiry.deadline == date(2024, 4, 10)
    assert inquiry.letter_date == date(2024, 4, 9)
    # without an answer date the letter is dated on the deadline
    inquiry = load_inquiry(_write(tmp_path, deadline=None, answer_date=None, received="2024-12-18")).inquiry
    assert inquiry.letter_date == date(2025, 1, 8)


def test_a_given_deadline_must_be_the_computed_one(tmp_path: Path) -> None:
    assert load_inquiry(_write(tmp_path, deadline="2024-09-09")).inquiry.deadline == date(2024, 9, 9)
    with pytest.raises(
        InquiryError,
        match=r"inq.yaml: deadline 2024-09-10 is not 10 working days after 2024-08-26 "
        r"\(received\): that is 2024-09-09",
    ):
        load_inquiry(_write(tmp_path, deadline="2024-09-10"))
    # Easter: the naive count (5 April) is wrong
    with pytest.raises(InquiryError, match=r"that is 2024-04-10"):
        load_inquiry(_write(tmp_path, received="2024-03-22", deadline="2024-04-05", answer_date="2024-04-04"))


def test_working_days_can_be_set(tmp_path: Path) -> None:
    inquiry = load_inquiry(_write(tmp_path, deadline=None, working_days=5)).inquiry
    assert inquiry.deadline == date(2024, 9, 2)


def test_answer_date_not_before_received(tmp_path: Path) -> None:
    with pytest.raises(InquiryError, match=r"answer_date 2024-08-01 is before the inquiry was received"):
        load_inquiry(_write(tmp_path, answer_date="2024-08-01"))
