-- One row per person and pay month: cost = every pay component (grundloen, tillaeg, pension) of
-- the month; fte = the highest employment fraction on the month's lines.
select
    employee_key,
    payroll_month,
    max(role) as role,
    max(job_title) as job_title,
    cast(max(fte) as decimal(7, 4)) as fte,
    cast(sum(amount_dkk) as decimal(18, 2)) as cost_dkk,
    cast(count(*) as integer) as pay_lines,
    cast(count(distinct role) as integer) as roles_in_month
from {{ ref('stg_payroll__lines') }}
group by employee_key, payroll_month
