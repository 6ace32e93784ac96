-- One row per funding source code (seed funding_sources).
select
    funding_source,
    funding_source_name
from {{ ref('funding_sources') }}
