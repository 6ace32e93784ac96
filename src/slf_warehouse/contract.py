"""The source contract (shared/contracts/sources.md) in code: one declaration per source.

Ingestion validates against these declarations and the sample-data writer writes by them, so the
two cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal[
    "text",
    "id",
    "code",
    "cost_centre",
    "iso_date",
    "dk_date",
    "dk_decimal",
    "integer",
    "answer",
    "month",
    "year",
]

# An id ("id" columns): letters (Danish ones included), digits and - _ . /, compared after Unicode
# NFC normalisation, so `SKOLE-017` has one spelling (no NFD twin, no U+2010 for the hyphen).
ID_CHARACTERS = r"[0-9A-Za-zÆØÅæøå][0-9A-Za-zÆØÅæøå_./-]*"

FUNDING_SOURCES = ("OPSPARING", "KOMPETENCE", "PULJE", "APMF")


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType = "text"
    required: bool = True  # False: may be empty
    codes: tuple[str, ...] = ()  # for type "code": the allowed values
    decimals: int = 2  # for dk_decimal: the scale stored


@dataclass(frozen=True)
class Limits:
    """What one delivered file may hold; beyond it the file is refused before it is parsed (a
    10^6-column CSV took DuckDB out of memory, a 613 KB XLSX unpacked to 1,3 GB). Overridden per
    source by SLF_INGEST_<SOURCE>_MAX_<BYTES|ROWS|COLUMNS> (ingest/delivery.py)."""

    max_bytes: int = 64 * 2**20  # as delivered; for XLSX also the workbook's unpacked size
    max_rows: int = 1_000_000
    max_columns: int = 100  # header fields, extra columns included
    max_line_bytes: int = 1 * 2**20  # one line of a CSV file (DuckDB's own default is 2 MB)


@dataclass(frozen=True)
class SourceSpec:
    name: str
    file_pattern: str  # regex on the file name; group "period" when a file carries one period
    file_format: Literal["csv", "xlsx"]
    columns: tuple[Column, ...]
    encoding: str = "utf-8"  # "utf-8", "utf-8-sig" (BOM) or "cp1252"
    delimiter: str = ","
    # What a delivery replaces: the whole table ("snapshot") or the period in its file name.
    replaces: Literal["snapshot", "period"] = "snapshot"
    period_column: str | None = None  # the column whose value must match the file's period
    unique_key: tuple[str, ...] = ()
    drop_columns: tuple[str, ...] = ()  # personal data never stored
    pseudonymise: dict[str, str] = field(default_factory=dict)  # source column -> stored column
    sheet: str | None = None
    limits: Limits = Limits()
    # Row rules the contract implies, over the typed columns: (the column named, SQL true for a
    # valid row, the message). Checked at the edge so the officer gets file and line, not a dbt test.
    row_rules: tuple[tuple[str, str, str], ...] = ()
    # column -> (source, its column): a value must be one that source holds, when it is loaded
    # (enheder loads first). For the payroll it also catches a header whose medarbejdernr and
    # omkostningssted are swapped, both six digits, which would store employee numbers in clear.
    references: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def personal_data(self) -> bool:
        """Holds names or employee numbers: read apart, and no message ever quotes its values."""
        return bool(self.drop_columns or self.pseudonymise)

    @property
    def quotes_values(self) -> bool:
        """Whether a message may quote a delivered value: never for personal data, nor for survey
        answers (a row is one respondent's answers, and one answer is personal data too)."""
        return not self.personal_data and not any(c.type == "answer" for c in self.columns)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def match(self, file_name: str) -> re.Match[str] | None:
        return re.fullmatch(self.file_pattern, file_name)


ENHEDER = SourceSpec(
    name="enheder",
    file_pattern=r"enheder\.csv",
    file_format="csv",
    columns=(
        Column("enhed_id", "id"),
        Column("enhed_navn"),
        Column("enhedstype", "code", codes=("skole", "dagtilbud", "fritidstilbud", "faellesfunktion")),
        Column("distrikt", "code", codes=("Nord", "Syd", "Vest", "Øst", "Midt")),
        Column("omkostningssted", "cost_centre"),
        Column("aktiv_fra", "iso_date"),
        Column("aktiv_til", "iso_date", required=False),
    ),
    unique_key=("enhed_id",),
    row_rules=(
        (
            "aktiv_til",
            "{aktiv_til} >= {aktiv_fra}",
            "the unit closes before it opens (aktiv_til is before aktiv_fra)",
        ),
    ),
)

BEVILLINGER = SourceSpec(
    name="bevillinger",
    file_pattern=r"bevillinger\.csv",
    file_format="csv",
    encoding="cp1252",
    delimiter=";",
    columns=(
        Column("bevilling_id", "id"),
        Column("finansieringskilde", "code", codes=FUNDING_SOURCES),
        Column("bevillingsdato", "dk_date"),
        Column("periode_fra", "dk_date"),
        Column("periode_til", "dk_date"),
        Column("beloeb_kr", "dk_decimal"),
        Column("journalnr"),
        Column("bemaerkning", required=False),
    ),
    unique_key=("bevilling_id",),
    row_rules=(
        (
            "periode_til",
            "{periode_til} >= {periode_fra}",
            "the period ends before it starts (periode_til is before periode_fra)",
        ),
        ("beloeb_kr", "{beloeb_kr} > 0", "the amount allocated must be positive"),
    ),
)

POSTERINGER = SourceSpec(
    name="posteringer",
    file_pattern=r"posteringer_(?P<period>\d{4}-\d{2})\.csv",
    file_format="csv",
    encoding="cp1252",
    delimiter=";",
    replaces="period",
    period_column="bogfoeringsdato",
    # a month at Børn og Unge's scale is about 100.000 lines, 8 MB
    limits=Limits(max_bytes=1024 * 2**20, max_rows=10_000_000),
    columns=(
        Column("bilagsnr"),
        Column("bogfoeringsdato", "dk_date"),
        Column("funktion"),
        Column("dranst", "code", codes=("1",)),
        Column("art"),
        Column("omkostningssted", "cost_centre"),
        Column("projekt", required=False),
        Column("aktivitet_id", "id", required=False),
        Column("finansieringskilde", "code", required=False, codes=FUNDING_SOURCES),
        Column("beloeb", "dk_decimal"),
        Column("tekst", required=False),
    ),
)

LOEN = SourceSpec(
    name="loen",
    file_pattern=r"loen_(?P<period>\d{4}-\d{2})\.csv",
    file_format="csv",
    encoding="utf-8-sig",
    delimiter=";",
    replaces="period",
    period_column="loenperiode",
    limits=Limits(max_bytes=256 * 2**20, max_rows=2_000_000),
    columns=(
        Column("medarbejdernr"),
        Column("navn"),
        Column("stilling"),
        Column("rolle", "code", codes=("laeringspartner", "projektmedarbejder", "sektionsleder")),
        Column("beskaeftigelsesgrad", "dk_decimal", decimals=4),
        Column("loenperiode", "month"),
        Column("loenart", "code", codes=("grundloen", "tillaeg", "pension")),
        Column("beloeb", "dk_decimal"),
        Column("omkostningssted", "cost_centre"),
    ),
    drop_columns=("navn",),
    references={"omkostningssted": ("enheder", "omkostningssted")},
    row_rules=(
        (
            "beskaeftigelsesgrad",
            "{beskaeftigelsesgrad} BETWEEN 0 AND 1.5",
            "a fraction of full time is between 0 and 1,5 (e.g. 0,8000)",
        ),
    ),
    pseudonymise={"medarbejdernr": "medarbejder_key"},
)

_ANSWERS = tuple(Column(f"{p}{i}", "answer", required=False) for p in ("sk", "slf") for i in range(1, 5))

SOCIAL_KAPITAL = SourceSpec(
    name="social_kapital",
    file_pattern=r"social_kapital_(?P<period>\d{4})\.xlsx",
    file_format="xlsx",
    sheet="Besvarelser",
    replaces="period",
    period_column="aar",
    limits=Limits(max_bytes=64 * 2**20, max_rows=1_000_000),
    columns=(Column("enhed_id", "id"), Column("aar", "year"), *_ANSWERS),
)

AKTIVITETER = SourceSpec(
    name="aktiviteter",
    file_pattern=r"aktiviteter\.csv",
    file_format="csv",
    columns=(
        Column("aktivitet_id", "id"),
        Column("aktivitetstype", "code", codes=("laeringsdag", "introduktionsdag", "lederseminar")),
        Column("titel"),
        Column("dato", "iso_date"),
        Column("maalgruppe", "code", codes=("ledere", "ressourcepersoner", "faglige_fyrtaarne", "alle")),
        Column("distrikt", "code", required=False, codes=("Nord", "Syd", "Vest", "Øst", "Midt")),
        Column("deltagere", "integer"),
    ),
    unique_key=("aktivitet_id",),
)

SOURCES: dict[str, SourceSpec] = {
    s.name: s for s in (ENHEDER, BEVILLINGER, POSTERINGER, LOEN, SOCIAL_KAPITAL, AKTIVITETER)
}
