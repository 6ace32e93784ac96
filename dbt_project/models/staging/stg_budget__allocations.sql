-- Allocations to the programme: renamed and cast, one row per allocation.
select
    cast(bevilling_id as varchar) as allocation_id,
    cast(finansieringskilde as varchar) as funding_source,
    cast(bevillingsdato as date) as decision_date,
    cast(periode_fra as date) as period_start,
    cast(periode_til as date) as period_end,
    cast(beloeb_kr as decimal(18, 2)) as amount_dkk,
    cast(journalnr as varchar) as journal_no,
    cast(bemaerkning as varchar) as remark,
    cast(_source_file as varchar) as source_file,
    cast(_source_line as integer) as source_line,
    cast(_load_id as varchar) as load_id
from {{ source('raw', 'bevillinger') }}
