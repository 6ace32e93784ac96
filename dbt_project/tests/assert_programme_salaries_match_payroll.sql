-- Contract rule: programme salary postings in the ledger (projekt SLF, main type 1) equal the
-- payroll total of the same month within 0,5 %. A month present on one side only fails too.
-- Returns the months that do not reconcile.
-- Severity warn: the quality gate (GE suites and reconciliations) enforces this rule and can be
-- overridden with a written reason; an error here would stop dbt build before the gate.
{{ config(severity='warn') }}
{%- set tolerance = var('payroll_reconciliation_tolerance') %}

with ledger as (
    select posting_month as month, sum(amount_dkk) as ledger_salaries_dkk
    from {{ ref('fct_programme_postings') }}
    where main_type = 1
    group by posting_month
),

payroll as (
    select payroll_month as month, sum(cost_dkk) as payroll_dkk
    from {{ ref('fct_payroll') }}
    group by payroll_month
),

compared as (
    select
        coalesce(ledger.month, payroll.month) as month,
        coalesce(ledger.ledger_salaries_dkk, 0) as ledger_salaries_dkk,
        coalesce(payroll.payroll_dkk, 0) as payroll_dkk
    from ledger
    full outer join payroll
        on payroll.month = ledger.month
)

select
    month,
    ledger_salaries_dkk,
    payroll_dkk,
    ledger_salaries_dkk - payroll_dkk as difference_dkk
from compared
where abs(ledger_salaries_dkk - payroll_dkk) > {{ tolerance }} * abs(payroll_dkk)
   or (payroll_dkk = 0 and ledger_salaries_dkk <> 0)
