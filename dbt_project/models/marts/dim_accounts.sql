-- One row per function of the authorised chart of accounts used in the ledger (seed).
select
    function_code,
    function_name,
    main_function_code,
    main_function_name,
    main_account_code,
    main_account_name
from {{ ref('chart_of_accounts_functions') }}
