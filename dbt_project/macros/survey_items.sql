{#
  The survey has four items per dimension: <prefix>1 .. <prefix>4 (sk = social capital, slf = the
  programme). NULL = not answered.
#}

{# Number of the four items that are answered. #}
{% macro survey_items_answered(prefix) -%}
    ({% for i in range(1, 5) %}case when {{ prefix }}{{ i }} is not null then 1 else 0 end{% if not loop.last %} + {% endif %}{% endfor %})
{%- endmacro %}

{# Sum of the answered items (unanswered count as 0; divide by survey_items_answered for the mean). #}
{% macro survey_items_sum(prefix) -%}
    ({% for i in range(1, 5) %}coalesce({{ prefix }}{{ i }}, 0){% if not loop.last %} + {% endif %}{% endfor %})
{%- endmacro %}
