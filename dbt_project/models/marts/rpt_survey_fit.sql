-- Per survey year: the ordinary least-squares fit of unit SLF score on unit social-capital index
-- over the units that are not suppressed; r_squared is the programme's "forklaringskraft".
with units as (
    select
        survey_year,
        is_suppressed,
        case when not is_suppressed then social_capital_index end as x,
        case when not is_suppressed then slf_score end as y
    from {{ ref('rpt_survey_unit_scores') }}
),

fit as (
    select
        survey_year,
        cast(sum(case when is_suppressed then 0 else 1 end) as integer) as units_used,
        cast(sum(case when is_suppressed then 1 else 0 end) as integer) as units_suppressed,
        {{ round_double('regr_slope(y, x)') }} as slope,
        {{ round_double('regr_intercept(y, x)') }} as intercept,
        {{ round_double('regr_r2(y, x)') }} as r_squared
    from units
    group by survey_year
),

latest as (
    select max(survey_year) as survey_year
    from fit
)

select
    fit.survey_year,
    fit.units_used,
    fit.units_suppressed,
    fit.slope,
    fit.intercept,
    fit.r_squared,
    fit.survey_year = latest.survey_year as is_latest_year
from fit
cross join latest
