-- Ledger postings (all of Børn og Unge's cost centres, not only the programme): renamed and cast.
select
    cast(bilagsnr as varchar) as voucher_no,
    cast(bogfoeringsdato as date) as posting_date,
    cast(funktion as varchar) as function_code,
    cast(dranst as varchar) as dranst,
    cast(art as varchar) as economic_type,
    cast(omkostningssted as varchar) as cost_centre,
    cast(projekt as varchar) as project,
    cast(aktivitet_id as varchar) as activity_id,
    cast(finansieringskilde as varchar) as funding_source,
    cast(beloeb as decimal(18, 2)) as amount_dkk,
    cast(tekst as varchar) as description,
    cast(_period as varchar) as delivery_period,
    cast(_source_file as varchar) as source_file,
    cast(_source_line as integer) as source_line,
    cast(_load_id as varchar) as load_id
from {{ source('raw', 'posteringer') }}
