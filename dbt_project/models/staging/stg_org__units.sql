-- Organisational units: renamed and cast, one row per unit.
select
    cast(enhed_id as varchar) as unit_id,
    cast(enhed_navn as varchar) as unit_name,
    cast(enhedstype as varchar) as unit_type,
    cast(distrikt as varchar) as district,
    cast(omkostningssted as varchar) as cost_centre,
    cast(aktiv_fra as date) as active_from,
    cast(aktiv_til as date) as active_to,
    cast(_source_file as varchar) as source_file,
    cast(_source_line as integer) as source_line,
    cast(_load_id as varchar) as load_id
from {{ source('raw', 'enheder') }}
