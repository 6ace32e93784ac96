-- One row per ledger line of the programme (projekt = SLF), with the unit whose cost centre it is
-- booked on (joined here, not in the incremental classification, so a changed unit register
-- applies to every line at the next build).
with postings as (
    select * from {{ ref('int_postings_classified') }}
    where is_programme
),

units as (
    select
        unit_id,
        unit_type,
        cost_centre
    from {{ ref('stg_org__units') }}
)

select
    postings.posting_id,
    postings.voucher_no,
    postings.posting_date,
    postings.posting_month,
    postings.budget_year,
    postings.function_code,
    postings.economic_type,
    postings.main_type,
    postings.cost_centre,
    units.unit_id,
    units.unit_type,
    postings.activity_id,
    postings.funding_source,
    postings.amount_dkk,
    postings.flow,
    postings.purpose,
    postings.description,
    postings.source_file,
    postings.source_line
from postings
left join units
    on postings.cost_centre = units.cost_centre
