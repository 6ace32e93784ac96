-- Contract rule: the A.P. Møller Fonden donation may not pay salaries - no APMF programme posting
-- has main type 1 (lønninger). Returns the offending postings.
-- Severity warn: the quality gate (GE suites and reconciliations) enforces this rule and can be
-- overridden with a written reason; an error here would stop dbt build before the gate.
{{ config(severity='warn') }}
select posting_id, voucher_no, posting_date, economic_type, amount_dkk, source_file, source_line
from {{ ref('fct_programme_postings') }}
where funding_source = 'APMF'
  and main_type = 1
