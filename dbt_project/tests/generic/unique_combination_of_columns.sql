{#
  Fails for every combination of the given columns that occurs more than once (the grain test).
  Usage:
    data_tests:
      - unique_combination_of_columns:
          arguments:
            combination_of_columns: [payroll_month, role]
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
    {%- set columns = combination_of_columns | join(', ') %}
    select {{ columns }}, count(*) as occurrences
    from {{ model }}
    group by {{ columns }}
    having count(*) > 1
{% endtest %}
