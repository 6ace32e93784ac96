-- One row per organisational unit.
select
    unit_id,
    unit_name,
    unit_type,
    district,
    cost_centre,
    active_from,
    active_to,
    (active_to is null or active_to >= current_date) as is_active
from {{ ref('stg_org__units') }}
