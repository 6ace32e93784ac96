-- One row per person and pay month: cost = all pay components, fte = the month's employment fraction.
select
    employee_key,
    payroll_month,
    role,
    fte,
    cost_dkk
from {{ ref('int_payroll_person_month') }}
