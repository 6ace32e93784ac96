-- Allocated against spent per funding source and budget year. Spent = the programme's expense
-- postings (flow = expense); income postings (e.g. the donation arriving) are not spending.
with allocated as (
    select
        funding_source,
        budget_year,
        sum(amount_dkk) as allocated_dkk
    from {{ ref('fct_allocations') }}
    group by funding_source, budget_year
),

spent as (
    select
        funding_source,
        budget_year,
        sum(amount_dkk) as spent_dkk
    from {{ ref('fct_programme_postings') }}
    where flow = 'expense'
    group by funding_source, budget_year
),

keys as (
    select
        funding_source,
        budget_year
    from allocated
    union
    select
        funding_source,
        budget_year
    from spent
)

select
    keys.funding_source,
    keys.budget_year,
    cast(coalesce(allocated.allocated_dkk, 0) as decimal(18, 2)) as allocated_dkk,
    cast(coalesce(spent.spent_dkk, 0) as decimal(18, 2)) as spent_dkk,
    cast(coalesce(allocated.allocated_dkk, 0) - coalesce(spent.spent_dkk, 0) as decimal(18, 2))
        as remaining_dkk
from keys
left join allocated
    on keys.funding_source = allocated.funding_source
        and keys.budget_year = allocated.budget_year
left join spent
    on keys.funding_source = spent.funding_source
        and keys.budget_year = spent.budget_year
