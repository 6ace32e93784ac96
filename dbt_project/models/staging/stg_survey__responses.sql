-- Social-capital survey: one row per anonymous respondent; items 0-4, NULL when not answered.
select
    cast(enhed_id as varchar) as unit_id,
    cast(aar as integer) as survey_year,
    cast(sk1 as integer) as sk1,
    cast(sk2 as integer) as sk2,
    cast(sk3 as integer) as sk3,
    cast(sk4 as integer) as sk4,
    cast(slf1 as integer) as slf1,
    cast(slf2 as integer) as slf2,
    cast(slf3 as integer) as slf3,
    cast(slf4 as integer) as slf4,
    cast(_source_file as varchar) as source_file,
    cast(_source_line as integer) as source_line,
    cast(_load_id as varchar) as load_id
from {{ source('raw', 'social_kapital') }}
