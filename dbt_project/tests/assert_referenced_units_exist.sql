-- Contract rule: every omkostningssted and enhed_id referred to exists in enheder. Checks the
-- ledger (all postings, not only the programme's), payroll and the survey. Returns each missing
-- reference once per source, with the number of lines naming it and an example file.
with references_ as (
    select 'posteringer.omkostningssted' as referenced_by, cost_centre as reference, source_file, source_line
    from {{ ref('stg_ledger__postings') }}
    where cost_centre not in (select cost_centre from {{ ref('stg_org__units') }})
       or cost_centre is null
    union all
    select 'loen.omkostningssted', cost_centre, source_file, source_line
    from {{ ref('stg_payroll__lines') }}
    where cost_centre not in (select cost_centre from {{ ref('stg_org__units') }})
       or cost_centre is null
    union all
    select 'social_kapital.enhed_id', unit_id, source_file, source_line
    from {{ ref('stg_survey__responses') }}
    where unit_id not in (select unit_id from {{ ref('stg_org__units') }})
       or unit_id is null
)

select
    referenced_by,
    reference,
    min(source_file) as example_file,
    count(*) as lines
from references_
group by referenced_by, reference
