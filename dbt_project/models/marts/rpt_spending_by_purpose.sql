-- Programme postings summed per month, funding source, purpose and flow.
select
    posting_month,
    budget_year,
    funding_source,
    purpose,
    flow,
    cast(sum(amount_dkk) as decimal(18, 2)) as amount_dkk,
    cast(count(*) as integer) as postings
from {{ ref('fct_programme_postings') }}
group by posting_month, budget_year, funding_source, purpose, flow
