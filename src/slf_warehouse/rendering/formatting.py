"""Danish presentation of figures, through Babel (locale da_DK).

Every function returns plain text with ordinary spaces: Babel puts no-break spaces (U+00A0) in
"26 mio. kr." and "80 %"; they are replaced here so the text reads, searches and copies the same
everywhere. The letter keeps a figure on one line with CSS (``white-space: nowrap``) instead.

Rounding is half up (the convention in Danish public finance), done here before Babel formats.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from babel.dates import format_date as _babel_format_date
from babel.numbers import format_compact_currency, format_currency, format_decimal
from babel.numbers import format_percent as _babel_format_percent

LOCALE = "da_DK"
CURRENCY = "DKK"
MILLION = Decimal(1_000_000)

# Numbers up to ten are written in words in running text. One takes the noun's gender:
# "en" for common gender (fælleskøn), "et" for neuter (intetkøn).
_WORDS = ["nul", "en", "to", "tre", "fire", "fem", "seks", "syv", "otte", "ni", "ti"]


def _plain(text: str) -> str:
    """Babel's no-break and narrow no-break spaces as ordinary spaces."""
    return text.replace("\u00a0", " ").replace("\u202f", " ")


def _decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or value is None:
        raise TypeError(f"not a number: {value!r}")
    if isinstance(value, (int, str)):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    raise TypeError(f"not a number: {value!r}")


def _round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def format_number(value: object, decimals: int = 0) -> str:
    """1234567 → "1.234.567"; with decimals=1, 6.55 → "6,6" (a trailing ,0 is kept: "6,0")."""
    number = _round(_decimal(value), decimals)
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return _plain(format_decimal(number, format=pattern, locale=LOCALE, decimal_quantization=False))


def format_kr(value: object) -> str:
    """Whole kroner: 1234567 → "1.234.567 kr."."""
    amount = _round(_decimal(value), 0)
    return _plain(
        format_currency(amount, CURRENCY, format="#,##0\u00a0¤", currency_digits=False, locale=LOCALE)
    )


def format_kr_exact(value: object) -> str:
    """Kroner and øre, for the data appendix: 1234567.5 → "1.234.567,50 kr."."""
    return _plain(format_currency(_round(_decimal(value), 2), CURRENCY, locale=LOCALE))


def format_mio_kr(value: object) -> str:
    """Millions with at most one decimal, a trailing ,0 dropped: 26000000 → "26 mio. kr.",
    6600000 → "6,6 mio. kr.". Amounts under one million are written in whole kroner
    ("950.000 kr."); milliards as Babel writes them ("1,2 mia. kr.")."""
    amount = _decimal(value)
    if abs(amount) < MILLION:
        return format_kr(amount)
    in_millions = _round(amount / MILLION, 1)
    if abs(in_millions) < 1000:
        amount = in_millions * MILLION  # rounded once, half up; Babel then only drops a ,0
    return _plain(format_compact_currency(amount, CURRENCY, locale=LOCALE, fraction_digits=1))


def format_percent(ratio: object, decimals: int = 0) -> str:
    """A ratio as percent: 0.7987 → "80 %"; decimals=1 → "79,9 %"."""
    percent = _round(_decimal(ratio) * 100, decimals)
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "") + "\u00a0%"
    return _plain(
        _babel_format_percent(percent / 100, format=pattern, locale=LOCALE, decimal_quantization=True)
    )


def format_date(value: date) -> str:
    """date(2026, 11, 23) → "23. november 2026"."""
    return _plain(_babel_format_date(value, format="long", locale=LOCALE))


def format_month(value: date) -> str:
    """date(2024, 6, 1) → "juni 2024"."""
    return _plain(_babel_format_date(value, format="MMMM y", locale=LOCALE))


def format_month_short(value: date) -> str:
    """date(2024, 6, 1) → "jun." (May: "maj"), for chart labels."""
    return _plain(_babel_format_date(value, format="LLL", locale=LOCALE))


def format_year(value: object) -> str:
    """A year is written without a thousands separator: 2023 → "2023"."""
    return str(int(_decimal(value)))


def format_period_end(value: date) -> str:
    """How a letter names the end of a period: 30 June → "medio 2024", 31 December →
    "udgangen af 2024", otherwise the date ("15. marts 2024")."""
    if (value.month, value.day) == (6, 30):
        return f"medio {value.year}"
    if (value.month, value.day) == (12, 31):
        return f"udgangen af {value.year}"
    return format_date(value)


def number_words(value: object, neuter: bool = False) -> str:
    """0–10 in words ("en"/"et", "to" … "ti"), larger numbers in digits ("16", "1.234")."""
    number = _decimal(value)
    if number != number.to_integral_value():
        raise ValueError(f"number_words: {value!r} is not a whole number")
    n = int(number)
    if 0 <= n <= 10:
        return "et" if n == 1 and neuter else _WORDS[n]
    return format_number(n)


def count_phrase(value: object, singular: str, plural: str, neuter: bool = False) -> str:
    """A count with its noun: "en projektmedarbejder", "et team", "to sektionsledere",
    "16 læringspartnere", "ingen læringspartnere"."""
    n = int(_decimal(value))
    if n == 0:
        return f"ingen {plural}"
    return f"{number_words(n, neuter=neuter)} {singular if n == 1 else plural}"


def lower_first(text: str) -> str:
    """ "Centrale puljer" → "centrale puljer", for a name used inside a sentence. Names that begin
    with two capitals (an abbreviation such as "APV") are left alone."""
    if len(text) >= 2 and text[0].isupper() and text[1].isupper():
        return text
    return text[:1].lower() + text[1:]


def join_words(items: list[str], conjunction: str = "og") -> str:
    """["a", "b", "c"] → "a, b og c" (no comma before "og", as Danish writes it)."""
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"
