-- Payroll lines: renamed and cast. The pay period `YYYY-MM` is cast to the first day of the month.
select
    cast(medarbejder_key as varchar) as employee_key,
    cast(stilling as varchar) as job_title,
    cast(rolle as varchar) as role,
    cast(loenperiode as varchar) as payroll_period,
    cast(loenperiode || '-01' as date) as payroll_month,
    cast(loenart as varchar) as pay_component,
    cast(omkostningssted as varchar) as cost_centre,
    cast(beskaeftigelsesgrad as decimal(7, 4)) as fte,
    cast(beloeb as decimal(18, 2)) as amount_dkk,
    cast(_source_file as varchar) as source_file,
    cast(_source_line as integer) as source_line,
    cast(_load_id as varchar) as load_id
from {{ source('raw', 'loen') }}
