-- Every ledger line with its classification: main type, flow, purpose, programme flag, month and
-- budget year, and the unit whose cost centre it is booked on.
with postings as (
    select * from {{ ref('stg_ledger__postings') }}
),

units as (
    select
        unit_id,
        unit_type,
        cost_centre
    from {{ ref('stg_org__units') }}
),

classified as (
    select
        postings.*,
        cast(substring(postings.economic_type, 1, 1) as integer) as main_type
    from postings
)

select
    classified.source_file || ':' || cast(classified.source_line as varchar) as posting_id,
    classified.voucher_no,
    classified.posting_date,
    cast({{ dbt.date_trunc('month', 'classified.posting_date') }} as date) as posting_month,
    cast(extract(year from classified.posting_date) as integer) as budget_year,
    classified.function_code,
    classified.economic_type,
    classified.main_type,
    classified.cost_centre,
    units.unit_id,
    units.unit_type,
    classified.project,
    coalesce(classified.project = 'SLF', false) as is_programme,
    classified.activity_id,
    classified.funding_source,
    classified.amount_dkk,
    case when classified.amount_dkk < 0 then 'income' else 'expense' end as flow,
    case
        when classified.main_type = 1 then 'salaries'
        when classified.activity_id is not null then 'competence_activities'
        else 'other'
    end as purpose,
    classified.description,
    classified.source_file,
    classified.source_line,
    classified.load_id
from classified
left join units
    on classified.cost_centre = units.cost_centre
