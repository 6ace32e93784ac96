{#
  Rounds a double-precision expression to `places` decimals and keeps it double precision.
  Floating-point aggregates (avg, regr_*) depend on the order rows arrive in, so their last bits
  differ between runs, and an exact fit can come out as R² = 1.0000000000000004. Rounding to 12
  decimals makes the marts reproducible and keeps R² inside [0, 1]. Portable (DuckDB, PostgreSQL).
#}
{% macro round_double(expression, places=12) -%}
    cast(cast({{ expression }} as decimal({{ 12 + places }}, {{ places }})) as double precision)
{%- endmacro %}
