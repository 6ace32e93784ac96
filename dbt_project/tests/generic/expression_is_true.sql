{#
  Fails for every row where the SQL expression is not true (NULL counts as failing). Works on a
  model or on a column (the column name is then only used for naming the test).
  Usage:
    data_tests:
      - expression_is_true:
          arguments:
            expression: "remaining_dkk = allocated_dkk - spent_dkk"
#}
{% test expression_is_true(model, expression, column_name=none) %}
    select *
    from {{ model }}
    where not coalesce(({{ expression }}), false)
{% endtest %}
