-- Contract rule: a programme posting's funding source names an allocation source that exists in
-- bevillinger. A programme posting without a funding source fails too. Returns the offenders.
-- Severity warn: the quality gate (GE suites and reconciliations) enforces this rule and can be
-- overridden with a written reason; an error here would stop dbt build before the gate.
{{ config(severity='warn') }}
select
    postings.posting_id,
    postings.voucher_no,
    postings.funding_source,
    postings.amount_dkk,
    postings.source_file,
    postings.source_line
from {{ ref('fct_programme_postings') }} as postings
where postings.funding_source is null
   or postings.funding_source not in (
        select funding_source
        from {{ ref('fct_allocations') }}
        where funding_source is not null
    )
