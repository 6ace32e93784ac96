-- One row per person ever on the programme's payroll: the roster entry as of the latest payroll
-- month, which the snapshot snp_staff_roster keeps the history of. Role, job title and fte are those
-- of the person's last paid month; is_employed = paid in the latest payroll month.
-- changed_at is business time: the first month of the person's current unbroken run of months with
-- the same role, job title and fte; for someone no longer paid, the first month after the last paid
-- one (the month the person left).
-- A table, not a view: it needs every month of every person (window functions), and its tests and
-- the snapshot would otherwise each compute it again.
{{ config(materialized='table') }}

with person_months as (
    select
        employee_key,
        payroll_month,
        role,
        job_title,
        fte
    from {{ ref('int_payroll_person_month') }}
),

with_previous as (
    select
        employee_key,
        payroll_month,
        role,
        job_title,
        fte,
        lag(payroll_month) over by_month as previous_month,
        lag(role) over by_month as previous_role,
        lag(job_title) over by_month as previous_job_title,
        lag(fte) over by_month as previous_fte
    from person_months
    window by_month as (partition by employee_key order by payroll_month)
),

-- A run of months starts at a person's first month, after a month without pay, or when the role,
-- job title or fte changes; run_number counts the runs per person.
runs as (
    select
        employee_key,
        payroll_month,
        role,
        job_title,
        fte,
        sum(
            case
                when
                    previous_month is null
                    or cast({{ dbt.dateadd('month', 1, 'previous_month') }} as date) <> payroll_month
                    or previous_role is distinct from role
                    or previous_job_title is distinct from job_title
                    or previous_fte is distinct from fte
                    then 1
                else 0
            end
        ) over (
            partition by employee_key order by payroll_month
            rows between unbounded preceding and current row
        ) as run_number
    from with_previous
),

people as (
    select
        employee_key,
        min(payroll_month) as first_paid_month,
        max(payroll_month) as last_paid_month,
        max(run_number) as last_run_number
    from runs
    group by employee_key
),

current_runs as (
    select
        runs.employee_key,
        min(runs.payroll_month) as run_start
    from runs
    inner join people
        on runs.employee_key = people.employee_key
            and runs.run_number = people.last_run_number
    group by runs.employee_key
),

latest as (
    select max(payroll_month) as roster_month
    from person_months
)

select
    people.employee_key,
    last_months.role,
    last_months.job_title,
    cast(last_months.fte as decimal(7, 4)) as fte,
    people.last_paid_month = latest.roster_month as is_employed,
    people.first_paid_month,
    cast(
        case
            when people.last_paid_month = latest.roster_month then current_runs.run_start
            else {{ dbt.dateadd('month', 1, 'people.last_paid_month') }}
        end as timestamp
    ) as changed_at
from people
inner join current_runs
    on people.employee_key = current_runs.employee_key
inner join runs as last_months
    on people.employee_key = last_months.employee_key
        and people.last_paid_month = last_months.payroll_month
cross join latest
