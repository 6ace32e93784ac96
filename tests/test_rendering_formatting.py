"""Danish presentation of figures (Babel, da_DK)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from slf_warehouse.rendering import formatting as fmt


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (26_000_000, "26 mio. kr."),
        (Decimal("26000000.00"), "26 mio. kr."),
        (6_600_000, "6,6 mio. kr."),
        (Decimal("6600000.00"), "6,6 mio. kr."),
        (25_960_000, "26 mio. kr."),  # rounds to 26,0 → the ,0 is dropped
        (31_450_000, "31,5 mio. kr."),  # half up
        (1_000_000, "1 mio. kr."),
        (999_999, "999.999 kr."),  # under a million: whole kroner
        (0, "0 kr."),
        (1_234_567_890, "1,2 mia. kr."),
    ],
)
def test_mio_kr(amount, expected) -> None:
    assert fmt.format_mio_kr(amount) == expected


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (1_234_567, "1.234.567 kr."),
        (Decimal("1234567.49"), "1.234.567 kr."),
        (Decimal("1234567.50"), "1.234.568 kr."),
        (125_000, "125.000 kr."),
        (0, "0 kr."),
    ],
)
def test_kr(amount, expected) -> None:
    assert fmt.format_kr(amount) == expected


def test_kr_exact() -> None:
    assert fmt.format_kr_exact(Decimal("26000000")) == "26.000.000,00 kr."
    assert fmt.format_kr_exact(1234567.5) == "1.234.567,50 kr."


@pytest.mark.parametrize(
    ("ratio", "decimals", "expected"),
    [
        (0.80, 0, "80 %"),
        (0.7987, 0, "80 %"),
        (0.6449, 0, "64 %"),
        (0.805, 0, "81 %"),  # half up, not banker's rounding
        (0.7987, 1, "79,9 %"),
        (1, 0, "100 %"),
    ],
)
def test_percent(ratio, decimals, expected) -> None:
    assert fmt.format_percent(ratio, decimals) == expected


def test_no_break_spaces_are_plain_spaces() -> None:
    for text in (fmt.format_mio_kr(6_600_000), fmt.format_percent(0.8), fmt.format_kr(1_234_567)):
        assert "\u00a0" not in text and "\u202f" not in text


def test_dates() -> None:
    assert fmt.format_date(date(2026, 11, 23)) == "23. november 2026"
    assert fmt.format_date(date(2024, 9, 6)) == "6. september 2024"
    assert fmt.format_month(date(2024, 6, 1)) == "juni 2024"
    assert fmt.format_year(2023) == "2023"
    assert fmt.format_period_end(date(2024, 6, 30)) == "medio 2024"
    assert fmt.format_period_end(date(2024, 12, 31)) == "udgangen af 2024"
    assert fmt.format_period_end(date(2024, 3, 15)) == "15. marts 2024"


def test_numbers() -> None:
    assert fmt.format_number(1_234_567) == "1.234.567"
    assert fmt.format_number(Decimal("6.55"), decimals=1) == "6,6"


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "nul"),
        (1, "en"),
        (2, "to"),
        (3, "tre"),
        (4, "fire"),
        (5, "fem"),
        (6, "seks"),
        (7, "syv"),
        (8, "otte"),
        (9, "ni"),
        (10, "ti"),
        (11, "11"),
        (16, "16"),
        (1234, "1.234"),
    ],
)
def test_number_words(n, expected) -> None:
    assert fmt.number_words(n) == expected


def test_number_words_gender_and_wholeness() -> None:
    assert fmt.number_words(1, neuter=True) == "et"
    assert fmt.number_words(2, neuter=True) == "to"
    assert fmt.number_words(Decimal("3.00")) == "tre"
    with pytest.raises(ValueError):
        fmt.number_words(Decimal("2.5"))


def test_count_phrase() -> None:
    assert fmt.count_phrase(16, "læringspartner", "læringspartnere") == "16 læringspartnere"
    assert fmt.count_phrase(1, "projektmedarbejder", "projektmedarbejdere") == "en projektmedarbejder"
    assert fmt.count_phrase(2, "projektmedarbejder", "projektmedarbejdere") == "to projektmedarbejdere"
    assert fmt.count_phrase(1, "sektionsleder", "sektionsledere") == "en sektionsleder"
    assert fmt.count_phrase(1, "team", "teams", neuter=True) == "et team"
    assert fmt.count_phrase(10, "team", "teams", neuter=True) == "ti teams"
    assert fmt.count_phrase(0, "læringspartner", "læringspartnere") == "ingen læringspartnere"


def test_words_and_lists() -> None:
    assert fmt.lower_first("Centrale puljer") == "centrale puljer"
    assert fmt.lower_first("APV-spørgsmål") == "APV-spørgsmål"
    assert fmt.join_words(["a", "b", "c"]) == "a, b og c"
    assert fmt.join_words(["a"]) == "a"
    assert fmt.join_words(["a", "b"], "eller") == "a eller b"
