-- Competence-development activities: renamed and cast, one row per activity.
select
    cast(aktivitet_id as varchar) as activity_id,
    cast(aktivitetstype as varchar) as activity_type,
    cast(titel as varchar) as title,
    cast(dato as date) as held_on,
    cast(maalgruppe as varchar) as target_group,
    cast(distrikt as varchar) as district,
    cast(deltagere as integer) as participants,
    cast(_source_file as varchar) as source_file,
    cast(_source_line as integer) as source_line,
    cast(_load_id as varchar) as load_id
from {{ source('raw', 'aktiviteter') }}
