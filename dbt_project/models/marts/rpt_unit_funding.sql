-- Programme money booked on each unit's cost centre, per month: every unit that exists in the
-- month, for every month from the first to the last programme posting, 0 when nothing is booked
-- (which is the answer for individual schools and daycare units).
with postings as (
    select * from {{ ref('fct_programme_postings') }}
),

posting_range as (
    select
        min(posting_month) as first_month,
        max(posting_month) as last_month
    from postings
),

months as (
    select
        calendar.month,
        calendar.month_end
    from {{ ref('dim_calendar') }} as calendar
    inner join posting_range
        on calendar.month >= posting_range.first_month
            and calendar.month <= posting_range.last_month
),

units as (
    select * from {{ ref('dim_units') }}
),

booked as (
    select
        unit_id,
        posting_month,
        sum(amount_dkk) as amount_dkk
    from postings
    where unit_id is not null
    group by unit_id, posting_month
)

select
    units.unit_id,
    units.unit_name,
    units.unit_type,
    units.district,
    months.month as posting_month,
    cast(coalesce(booked.amount_dkk, 0) as decimal(18, 2)) as programme_amount_dkk
from units
inner join months
    on units.active_from <= months.month_end
        and (units.active_to is null or units.active_to >= months.month)
left join booked
    on units.unit_id = booked.unit_id
        and months.month = booked.posting_month
