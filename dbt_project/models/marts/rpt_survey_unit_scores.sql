-- Per unit and survey year: the means of the counted respondents' indices. Units with fewer than
-- 5 counted respondents are suppressed: both scores NULL (shown as "<5", never on their own).
{%- set min_respondents = var('suppression_min_respondents') %}

with respondents as (
    select * from {{ ref('int_survey_respondent_scores') }}
),

by_unit as (
    select
        unit_id,
        survey_year,
        cast(count(*) as integer) as respondents,
        cast(sum(case when is_counted then 1 else 0 end) as integer) as counted_respondents,
        {{ round_double('avg(case when is_counted then social_capital_index end)') }} as social_capital_index,
        {{ round_double('avg(case when is_counted then slf_index end)') }} as slf_score
    from respondents
    group by unit_id, survey_year
)

select
    by_unit.unit_id,
    units.unit_type,
    by_unit.survey_year,
    by_unit.respondents,
    by_unit.counted_respondents,
    case when by_unit.counted_respondents >= {{ min_respondents }} then by_unit.social_capital_index end
        as social_capital_index,
    case when by_unit.counted_respondents >= {{ min_respondents }} then by_unit.slf_score end
        as slf_score,
    (by_unit.counted_respondents < {{ min_respondents }}) as is_suppressed
from by_unit
left join {{ ref('stg_org__units') }} as units
    on by_unit.unit_id = units.unit_id
