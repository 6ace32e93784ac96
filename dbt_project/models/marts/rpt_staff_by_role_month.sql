-- Staff per role and month: headcount = distinct people, fte and cost summed.
with payroll as (
    select * from {{ ref('fct_payroll') }}
),

by_role as (
    select
        payroll_month,
        role,
        cast(count(distinct employee_key) as integer) as headcount,
        cast(sum(fte) as decimal(18, 4)) as fte,
        cast(sum(cost_dkk) as decimal(18, 2)) as cost_dkk
    from payroll
    group by payroll_month, role
),

latest as (
    select max(payroll_month) as payroll_month
    from payroll
)

select
    by_role.payroll_month,
    by_role.role,
    by_role.headcount,
    by_role.fte,
    by_role.cost_dkk,
    by_role.payroll_month = latest.payroll_month as is_latest_month
from by_role
cross join latest
