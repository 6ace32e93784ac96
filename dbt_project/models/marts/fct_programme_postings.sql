-- One row per ledger line of the programme (projekt = SLF).
select
    posting_id,
    voucher_no,
    posting_date,
    posting_month,
    budget_year,
    function_code,
    economic_type,
    main_type,
    cost_centre,
    unit_id,
    unit_type,
    activity_id,
    funding_source,
    amount_dkk,
    flow,
    purpose,
    description,
    source_file,
    source_line
from {{ ref('int_postings_classified') }}
where is_programme
