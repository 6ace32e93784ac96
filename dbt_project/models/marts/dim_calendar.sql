-- One row per month from the earliest to the latest date in allocations, ledger, payroll and
-- activities. The municipal budget year is the calendar year.
with recursive dates as (
    select period_start as the_date from {{ ref('stg_budget__allocations') }}
    union all
    select period_end from {{ ref('stg_budget__allocations') }}
    union all
    select posting_date from {{ ref('stg_ledger__postings') }}
    union all
    select payroll_month from {{ ref('stg_payroll__lines') }}
    union all
    select held_on from {{ ref('stg_courses__activities') }}
),

bounds as (
    select
        cast({{ dbt.date_trunc('month', 'min(the_date)') }} as date) as first_month,
        cast({{ dbt.date_trunc('month', 'max(the_date)') }} as date) as last_month
    from dates
),

months as (
    select
        first_month as month_start,
        last_month
    from bounds
    where first_month is not null
    union all
    select
        cast({{ dbt.dateadd('month', 1, 'month_start') }} as date),
        last_month
    from months
    where month_start < last_month
)

select
    month_start as month,
    cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'month_start')) }} as date) as month_end,
    cast(extract(year from month_start) as integer) as budget_year,
    cast(extract(month from month_start) as integer) as month_number,
    cast(extract(quarter from month_start) as integer) as quarter,
    case when extract(month from month_start) <= 6 then 1 else 2 end as half_year
from months
