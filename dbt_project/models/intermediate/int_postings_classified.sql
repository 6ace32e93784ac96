-- Every ledger line with its classification: main type, flow, purpose, programme flag, month and
-- budget year. Incremental: a build classifies only the deliveries loaded since the last one (a new
-- month, or a corrected month, which replaces its period), so a monthly refresh at municipal
-- scale does not re-classify millions of unchanged lines. Everything here depends on the line
-- alone; joins to reference data that can change (units) happen downstream, in the marts.
{{
    config(
        materialized='incremental',
        unique_key='delivery_period',
        incremental_strategy='delete+insert',
        on_schema_change='fail'
    )
}}

with postings as (
    select * from {{ ref('stg_ledger__postings') }}
    {% if is_incremental() %}
        where load_id not in (select distinct load_id from {{ this }})
    {% endif %}
),

classified as (
    select
        postings.*,
        cast(substring(postings.economic_type, 1, 1) as integer) as main_type
    from postings
)

select
    source_file || ':' || cast(source_line as varchar) as posting_id,
    voucher_no,
    posting_date,
    cast({{ dbt.date_trunc('month', 'posting_date') }} as date) as posting_month,
    cast(extract(year from posting_date) as integer) as budget_year,
    function_code,
    economic_type,
    main_type,
    cost_centre,
    project,
    coalesce(project = 'SLF', false) as is_programme,
    activity_id,
    funding_source,
    amount_dkk,
    case when amount_dkk < 0 then 'income' else 'expense' end as flow,
    case
        when main_type = 1 then 'salaries'
        when activity_id is not null then 'competence_activities'
        else 'other'
    end as purpose,
    description,
    delivery_period,
    source_file,
    source_line,
    load_id
from classified
