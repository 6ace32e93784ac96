-- One row per person and pay month: cost = every pay component (grundloen, tillaeg, pension) of
-- the month; fte = the highest employment fraction on the month's lines. Incremental: a build
-- aggregates only the pay months whose file was loaded since the last build (one file per month,
-- so a corrected month replaces all of that month's rows).
{{
    config(
        materialized='incremental',
        unique_key='payroll_month',
        incremental_strategy='delete+insert',
        on_schema_change='fail'
    )
}}

select
    employee_key,
    payroll_month,
    max(role) as role,
    max(job_title) as job_title,
    cast(max(fte) as decimal(7, 4)) as fte,
    cast(sum(amount_dkk) as decimal(18, 2)) as cost_dkk,
    cast(count(*) as integer) as pay_lines,
    cast(count(distinct role) as integer) as roles_in_month,
    max(load_id) as load_id
from {{ ref('stg_payroll__lines') }}
{% if is_incremental() %}
    where load_id not in (select distinct load_id from {{ this }})
{% endif %}
group by employee_key, payroll_month
