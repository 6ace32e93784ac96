-- One row per economic type (art) used in the ledger, with its main type (hovedart) (seed).
select
    economic_type,
    economic_type_name,
    main_type,
    main_type_name
from {{ ref('economic_types') }}
