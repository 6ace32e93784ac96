-- One row per allocation to the programme, with the funding source's name and the budget year
-- (the calendar year in which the allocation's period starts).
select
    allocations.allocation_id,
    allocations.funding_source,
    funding_sources.funding_source_name,
    allocations.decision_date,
    allocations.period_start,
    allocations.period_end,
    cast(extract(year from allocations.period_start) as integer) as budget_year,
    allocations.amount_dkk,
    allocations.journal_no,
    allocations.remark,
    allocations.source_file,
    allocations.source_line
from {{ ref('stg_budget__allocations') }} as allocations
left join {{ ref('funding_sources') }} as funding_sources
    on allocations.funding_source = funding_sources.funding_source
