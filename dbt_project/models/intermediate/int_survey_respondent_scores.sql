-- One row per respondent with its two indices (contract: mean of the answered items x 4, 0-16,
-- counted only when at least 2 of the 4 items are answered). A respondent counts towards its unit
-- when both indices are counted.
{%- set min_answered = var('survey_min_answered_items') %}

with responses as (
    select
        source_file || ':' || cast(source_line as varchar) as response_id,
        unit_id,
        survey_year,
        {{ survey_items_answered('sk') }} as sk_answered,
        {{ survey_items_sum('sk') }} as sk_sum,
        {{ survey_items_answered('slf') }} as slf_answered,
        {{ survey_items_sum('slf') }} as slf_sum,
        source_file,
        source_line
    from {{ ref('stg_survey__responses') }}
),

scored as (
    select
        response_id,
        unit_id,
        survey_year,
        sk_answered,
        slf_answered,
        case
            when sk_answered >= {{ min_answered }}
                then cast(sk_sum as double precision) * 4 / sk_answered
        end as social_capital_index,
        case
            when slf_answered >= {{ min_answered }}
                then cast(slf_sum as double precision) * 4 / slf_answered
        end as slf_index,
        source_file,
        source_line
    from responses
)

select
    response_id,
    unit_id,
    survey_year,
    sk_answered,
    slf_answered,
    social_capital_index,
    slf_index,
    (social_capital_index is not null and slf_index is not null) as is_counted,
    source_file,
    source_line
from scored
