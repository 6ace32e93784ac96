"""Regenerates tests/data/bad/: broken deliveries made from the sample data, one fault each.

Run `python tests/data/make_bad_corpus.py` after changing the sample data; the files and
`cases.json` (the exact error each must produce) are committed so a reviewer can open them.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from slf_warehouse.sample_data import write_sample_data

HERE = Path(__file__).parent / "bad"


def _lines(path: Path, encoding: str) -> list[str]:
    return path.read_bytes().decode(encoding).splitlines(keepends=True)


def _set_field(line: str, delimiter: str, index: int, value: str) -> str:
    ending = "\r\n" if line.endswith("\r\n") else "\n"
    import csv
    import io

    fields = next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter))
    fields[index] = value
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator=ending).writerow(fields)
    return out.getvalue()


def main() -> None:
    shutil.rmtree(HERE, ignore_errors=True)
    cases: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp)
        write_sample_data(sample)

        def case(
            name: str,
            source: str,
            file_name: str,
            content: bytes,
            line: int | None,
            column: str | None,
            message: str,
        ) -> None:
            target = HERE / name / source / file_name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            cases.append(
                {
                    "case": name,
                    "source": source,
                    "file": file_name,
                    "line": line,
                    "column": column,
                    "message": message,
                }
            )

        def csv_case(
            name: str,
            source: str,
            file_name: str,
            encoding: str,
            delimiter: str,
            line_no: int,
            column: str,
            value: str,
            message: str,
            out_name: str | None = None,
        ) -> None:
            lines = _lines(sample / source / file_name, encoding)
            header = next(
                iter(
                    __import__("csv").reader([lines[0].lstrip("\ufeff").rstrip("\r\n")], delimiter=delimiter)
                )
            )
            lines[line_no - 1] = _set_field(lines[line_no - 1], delimiter, header.index(column), value)
            case(
                name, source, out_name or file_name, "".join(lines).encode(encoding), line_no, column, message
            )

        # enheder: UTF-8, ',', ISO dates
        e = _lines(sample / "enheder" / "enheder.csv", "utf-8")
        case(
            "01-enheder-missing-column",
            "enheder",
            "enheder.csv",
            "".join(
                ",".join(
                    f for i, f in enumerate(next(iter(__import__("csv").reader([ln.rstrip("\n")])))) if i != 3
                )
                + "\n"
                for ln in e
            ).encode("utf-8"),
            1,
            "distrikt",
            "required column is missing",
        )
        csv_case(
            "02-enheder-unknown-type",
            "enheder",
            "enheder.csv",
            "utf-8",
            ",",
            5,
            "enhedstype",
            "skolen",
            "unknown code",
        )
        csv_case(
            "03-enheder-short-cost-centre",
            "enheder",
            "enheder.csv",
            "utf-8",
            ",",
            4,
            "omkostningssted",
            "31010",
            "expected six digits",
        )
        csv_case(
            "04-enheder-duplicate-id",
            "enheder",
            "enheder.csv",
            "utf-8",
            ",",
            10,
            "enhed_id",
            "SKOLE-001",
            "duplicate key",
        )
        case(
            "05-enheder-cp1252-as-utf8",
            "enheder",
            "enheder.csv",
            (sample / "enheder" / "enheder.csv").read_text("utf-8").encode("cp1252"),
            2,
            None,
            "not valid UTF-8",
        )
        csv_case(
            "06-enheder-bad-iso-date",
            "enheder",
            "enheder.csv",
            "utf-8",
            ",",
            3,
            "aktiv_fra",
            "2007-13-01",
            "expected a date as yyyy-mm-dd",
        )

        # bevillinger: cp1252, ';', decimal comma, dd-mm-yyyy
        b = sample / "bevillinger" / "bevillinger.csv"
        case(
            "07-bevillinger-utf8-not-cp1252",
            "bevillinger",
            "bevillinger.csv",
            b.read_bytes().decode("cp1252").encode("utf-8"),
            2,
            None,
            "encoded as UTF-8",
        )
        csv_case(
            "08-bevillinger-decimal-point",
            "bevillinger",
            "bevillinger.csv",
            "cp1252",
            ";",
            3,
            "beloeb_kr",
            "3492000.00",
            "expected a number with decimal comma",
        )
        csv_case(
            "09-bevillinger-iso-date",
            "bevillinger",
            "bevillinger.csv",
            "cp1252",
            ";",
            4,
            "periode_fra",
            "2024-01-01",
            "expected a date as dd-mm-yyyy",
        )
        csv_case(
            "10-bevillinger-unknown-source",
            "bevillinger",
            "bevillinger.csv",
            "cp1252",
            ";",
            6,
            "finansieringskilde",
            "APMF2",
            "unknown code",
        )
        case(
            "11-bevillinger-comma-delimiter",
            "bevillinger",
            "bevillinger.csv",
            b.read_bytes().replace(b";", b","),
            1,
            None,
            "the delimiter is ','",
        )
        bl = _lines(b, "cp1252")
        case(
            "12-bevillinger-summary-row",
            "bevillinger",
            "bevillinger.csv",
            "".join(bl + ["I alt;;;;;27.746.000,00;;\r\n"]).encode("cp1252"),
            len(bl) + 1,
            "finansieringskilde",
            "looks like a summary or blank row",
        )
        csv_case(
            "13-bevillinger-duplicate-id",
            "bevillinger",
            "bevillinger.csv",
            "cp1252",
            ";",
            7,
            "bevilling_id",
            "BEV-2022-001",
            "duplicate key",
        )
        csv_case(
            "14-bevillinger-missing-amount",
            "bevillinger",
            "bevillinger.csv",
            "cp1252",
            ";",
            8,
            "beloeb_kr",
            "",
            "required value is missing",
        )

        # posteringer: cp1252, ';', one file per month
        p = "posteringer_2023-03.csv"
        pl = _lines(sample / "posteringer" / p, "cp1252")
        broken = pl.copy()
        broken[9] = broken[9].rstrip("\r\n") + "; ekstra felt\r\n"
        case(
            "15-posteringer-extra-field",
            "posteringer",
            p,
            "".join(broken).encode("cp1252"),
            10,
            None,
            "cannot be read as 11 fields",
        )
        csv_case(
            "16-posteringer-other-month",
            "posteringer",
            p,
            "cp1252",
            ";",
            12,
            "bogfoeringsdato",
            "14-04-2023",
            "belongs to another period",
        )
        csv_case("17-posteringer-dranst", "posteringer", p, "cp1252", ";", 5, "dranst", "2", "unknown code")
        csv_case(
            "18-posteringer-bad-amount",
            "posteringer",
            p,
            "cp1252",
            ";",
            7,
            "beloeb",
            "12,34,56",
            "expected a number with decimal comma",
        )
        csv_case(
            "19-posteringer-impossible-date",
            "posteringer",
            p,
            "cp1252",
            ";",
            3,
            "bogfoeringsdato",
            "31-02-2023",
            "expected a date as dd-mm-yyyy",
        )
        case(
            "20-posteringer-missing-column",
            "posteringer",
            p,
            "".join(
                ";".join(ln.rstrip("\r\n").split(";")[:9] + ln.rstrip("\r\n").split(";")[10:]) + "\r\n"
                for ln in pl
            ).encode("cp1252"),
            1,
            "beloeb",
            "required column is missing",
        )
        case(
            "21-posteringer-bad-file-name",
            "posteringer",
            "posteringer_2023-3.csv",
            "".join(pl).encode("cp1252"),
            None,
            None,
            "unexpected file name",
        )

        # loen: UTF-8 with BOM, ';'
        lf = "loen_2023-05.csv"
        csv_case("22-loen-unknown-role", "loen", lf, "utf-8-sig", ";", 6, "rolle", "laerer", "unknown code")
        csv_case(
            "23-loen-other-period",
            "loen",
            lf,
            "utf-8-sig",
            ";",
            8,
            "loenperiode",
            "2023-06",
            "belongs to another period",
        )
        csv_case(
            "24-loen-percent-fte",
            "loen",
            lf,
            "utf-8-sig",
            ";",
            4,
            "beskaeftigelsesgrad",
            "80%",
            "expected a number with decimal comma",
        )
        case(
            "25-loen-cp1252",
            "loen",
            lf,
            (sample / "loen" / lf).read_text("utf-8-sig").encode("cp1252"),
            2,
            None,
            "not valid UTF-8",
        )

        # social_kapital: XLSX
        from openpyxl import load_workbook

        def xlsx_case(name: str, mutate, line: int | None, column: str | None, message: str) -> None:
            wb = load_workbook(sample / "social_kapital" / "social_kapital_2023.xlsx")
            mutate(wb)
            target = HERE / name / "social_kapital" / "social_kapital_2023.xlsx"
            target.parent.mkdir(parents=True, exist_ok=True)
            wb.save(target)
            cases.append(
                {
                    "case": name,
                    "source": "social_kapital",
                    "file": target.name,
                    "line": line,
                    "column": column,
                    "message": message,
                }
            )

        xlsx_case(
            "26-social-kapital-answer-out-of-range",
            lambda wb: wb["Besvarelser"].cell(row=9, column=4, value=5),
            9,
            "sk2",
            "expected an answer 0–4",
        )
        xlsx_case(
            "27-social-kapital-missing-sheet",
            lambda wb: setattr(wb["Besvarelser"], "title", "Ark1"),
            None,
            None,
            "sheet 'Besvarelser' is missing",
        )
        xlsx_case(
            "28-social-kapital-other-year",
            lambda wb: wb["Besvarelser"].cell(row=20, column=2, value=2022),
            20,
            "aar",
            "belongs to another period",
        )
        case(
            "29-social-kapital-csv-renamed",
            "social_kapital",
            "social_kapital_2023.xlsx",
            b"enhed_id;aar;sk1\r\nSKOLE-001;2023;3\r\n",
            None,
            None,
            "not a readable XLSX workbook",
        )

        # aktiviteter: UTF-8, ','
        csv_case(
            "30-aktiviteter-negative-participants",
            "aktiviteter",
            "aktiviteter.csv",
            "utf-8",
            ",",
            4,
            "deltagere",
            "-3",
            "expected a whole number",
        )
        csv_case(
            "31-aktiviteter-unknown-target-group",
            "aktiviteter",
            "aktiviteter.csv",
            "utf-8",
            ",",
            6,
            "maalgruppe",
            "lærere",
            "unknown code",
        )
        a = _lines(sample / "aktiviteter" / "aktiviteter.csv", "utf-8")
        case(
            "32-aktiviteter-header-only",
            "aktiviteter",
            "aktiviteter.csv",
            a[0].encode("utf-8"),
            None,
            None,
            "header but no rows",
        )

        # values that are well formed but cannot be stored, and row rules the contract implies
        csv_case(
            "33-bevillinger-period-ends-before-start",
            "bevillinger",
            "bevillinger.csv",
            "cp1252",
            ";",
            5,
            "periode_til",
            "31-12-2000",
            "the period ends before it starts",
        )
        csv_case(
            "34-bevillinger-negative-amount",
            "bevillinger",
            "bevillinger.csv",
            "cp1252",
            ";",
            3,
            "beloeb_kr",
            "-1.000,00",
            "the amount allocated must be positive",
        )
        csv_case(
            "35-aktiviteter-participants-overflow",
            "aktiviteter",
            "aktiviteter.csv",
            "utf-8",
            ",",
            4,
            "deltagere",
            "99999999999",
            "the number is too large",
        )
        csv_case(
            "36-bevillinger-20-digit-amount",
            "bevillinger",
            "bevillinger.csv",
            "cp1252",
            ";",
            6,
            "beloeb_kr",
            "12.345.678.901.234.567.890,00",
            "the number is too large to store",
        )
        csv_case(
            "37-enheder-escape-in-name",
            "enheder",
            "enheder.csv",
            "utf-8",
            ",",
            6,
            "enhed_navn",
            "Skolen \x1b[2J",
            "a control character",
        )
        csv_case(
            "38-enheder-look-alike-hyphen",
            "enheder",
            "enheder.csv",
            "utf-8",
            ",",
            7,
            "enhed_id",
            "SKOLE\u2010017",
            "expected an id of letters, digits",
        )
        csv_case(
            "39-loen-fte-over-one-and-a-half",
            "loen",
            lf,
            "utf-8-sig",
            ";",
            5,
            "beskaeftigelsesgrad",
            "8,0000",
            "a fraction of full time is between 0 and 1,5",
        )
        csv_case(
            "40-enheder-closes-before-it-opens",
            "enheder",
            "enheder.csv",
            "utf-8",
            ",",
            4,
            "aktiv_til",
            "1999-12-31",
            "the unit closes before it opens",
        )

    (HERE / "cases.json").write_text(json.dumps(cases, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"{len(cases)} cases written to {HERE}")


if __name__ == "__main__":
    main()
