"""The sample data grown to municipal scale, for the benchmark.

Scale 1 is the programme's own sample. Scale N adds Børn og Unge's ordinary operations around it:
about 1.000 × (N − 1) ledger lines per month on the units' cost centres and 140 × (N − 1) more
people on the payroll, with matching programme salary postings so the cross-source rules still
hold. The bulk rows are made and formatted by DuckDB (Python loops would dominate at scale 100)
and are plain ASCII, so the same bytes are valid Windows-1252 and UTF-8.
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb

from slf_warehouse.sample_data import SampleConfig, write_sample_data

LEDGER_LINES_PER_SCALE = 1_000
STAFF_PER_SCALE = 140
# The function (funktion) the bulk ledger lines of a unit are posted on, by unit type.
FUNCTION_BY_UNIT_TYPE = {"skole": "3.22.01", "dagtilbud": "5.25.14"}
OTHER_UNITS_FUNCTION = "3.22.05"
# One payroll line's amount (SQL, over person `e` and line `kind`): the payroll files' lines and
# the programme's salary postings that must match them are computed from the same expression.
_PAY_AMOUNT = (
    "CASE kind WHEN 'grundloen' THEN 31000 + (hash(e) % 9000) WHEN 'tillaeg' THEN 1200 "
    "ELSE (31000 + (hash(e) % 9000)) * 0.171 END"
)


def _dk(expr: str) -> str:
    """SQL turning a number into `1.234.567,89`."""
    return f"translate(format('{{:,.2f}}', ({expr})::DECIMAL(18, 2)), ',.', '.,')"


def _append(path: Path, csv_body: Path, crlf: bool) -> None:
    data = csv_body.read_bytes()
    if crlf:
        data = data.replace(b"\n", b"\r\n")
    with path.open("ab") as f:
        f.write(data)
    csv_body.unlink()


def write_scaled_sample(out: Path, scale: int) -> dict[str, int]:
    write_sample_data(out, SampleConfig())
    if scale <= 1:
        return {"extra_ledger_lines": 0, "extra_payroll_lines": 0}
    with (out / "enheder" / "enheder.csv").open(encoding="utf-8") as f:
        units = [r for r in csv.DictReader(f) if r["enhedstype"] != "faellesfunktion"]
    slf_cost_centre = "041203"
    ledger_per_month = LEDGER_LINES_PER_SCALE * (scale - 1)
    staff = STAFF_PER_SCALE * (scale - 1)
    con = duckdb.connect()
    con.execute("CREATE TABLE cc (idx INTEGER, cost_centre VARCHAR, function VARCHAR)")
    con.executemany(
        "INSERT INTO cc VALUES (?, ?, ?)",
        [
            (i, u["omkostningssted"], FUNCTION_BY_UNIT_TYPE.get(u["enhedstype"], OTHER_UNITS_FUNCTION))
            for i, u in enumerate(units)
        ],
    )
    n_cc = len(units)
    extra_ledger = extra_payroll = 0
    months = sorted(p.stem.split("_")[1] for p in (out / "posteringer").glob("posteringer_*.csv"))
    for m_index, month in enumerate(months):
        tmp = out / f".bulk-{month}.csv"
        seed = m_index * 1_000_003
        # Payroll of the wider organisation: three lines per person.
        con.execute(f"""
            COPY (
              SELECT lpad((300000 + e)::VARCHAR, 6, '0'), 'Medarbejder ' || e, 'Paedagog', 'laeringspartner',
                     '1,0000', '{month}', kind, {_dk(_PAY_AMOUNT)}, '{slf_cost_centre}'
              FROM range({staff}) s(e), (VALUES ('grundloen'), ('tillaeg'), ('pension')) k(kind)
              ORDER BY e, kind
            ) TO '{tmp}' (HEADER false, DELIMITER ';', QUOTE '"')""")
        _append(out / "loen" / f"loen_{month}.csv", tmp, crlf=True)
        extra_payroll += staff * 3
        salaries, pensions = con.execute(f"""
            SELECT sum(CASE WHEN kind <> 'pension' THEN amount END)::DECIMAL(18, 2),
                   sum(CASE WHEN kind = 'pension' THEN amount END)::DECIMAL(18, 2)
            FROM (SELECT kind, ({_PAY_AMOUNT})::DECIMAL(18, 2) AS amount
                  FROM range({staff}) s(e), (VALUES ('grundloen'), ('tillaeg'), ('pension')) k(kind))
        """).fetchall()[0]
        pay_day = f"strftime(last_day(DATE '{month}-01') - 1, '%d-%m-%Y')"
        operations_amount = _dk(
            f"(CASE WHEN i % 5 = 3 THEN -1 ELSE 1 END) * (800 + hash(i + {seed}) % 23920000 / 100)"
        )
        # Their salaries in the ledger (so ledger salaries still equal payroll), then operations.
        con.execute(f"""
            COPY (
              SELECT * FROM (VALUES
                ('9{m_index:03d}001', {pay_day}, '6.45.51', '1', '1.1',
                 '{slf_cost_centre}', 'SLF', '', 'OPSPARING', {_dk(str(salaries))}, 'Loen oevrige ansatte'),
                ('9{m_index:03d}002', {pay_day}, '6.45.51', '1', '1.5',
                 '{slf_cost_centre}', 'SLF', '', 'OPSPARING', {_dk(str(pensions))},
                 'Pension oevrige ansatte'))
              UNION ALL
              SELECT (20000000 + {seed} + i)::VARCHAR,
                     strftime(DATE '{month}-01' + (i % 28)::INTEGER, '%d-%m-%Y'), cc.function, '1',
                     ['2.9', '4.0', '1.1', '7.2', '2.2'][i % 5 + 1], cc.cost_centre,
                     CASE WHEN i % 4 = 0 THEN '' ELSE 'DRIFT' END, '', '',
                     {operations_amount},
                     'Drift, bilag ' || i
              FROM range({ledger_per_month}) t(i) JOIN cc ON cc.idx = i % {n_cc}
            ) TO '{tmp}' (HEADER false, DELIMITER ';', QUOTE '"')""")
        _append(out / "posteringer" / f"posteringer_{month}.csv", tmp, crlf=True)
        extra_ledger += ledger_per_month + 2
    return {"extra_ledger_lines": extra_ledger, "extra_payroll_lines": extra_payroll}
