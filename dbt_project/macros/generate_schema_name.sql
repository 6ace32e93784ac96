{#
  Custom schemas are used verbatim: a model configured with +schema: marts lands in `marts`,
  not `<target schema>_marts`. Models without a custom schema go to the target's schema.

  A build prefix (var `build_schema_prefix`, else env SLF_DBT_BUILD_SCHEMA_PREFIX) puts every node
  of one build into its own schemas, `<prefix>_marts` etc., so a refresh on PostgreSQL never writes
  the schemas readers use; slf_warehouse.warehouse_pg publishes them after the quality gate. Unset
  (the DuckDB warehouse, where a build is its own file), nothing changes. Sources keep their own
  schema (`raw`).
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set prefix = var('build_schema_prefix', env_var('SLF_DBT_BUILD_SCHEMA_PREFIX', '')) | trim -%}
    {%- if custom_schema_name is none -%}
        {%- set schema = target.schema -%}
    {%- else -%}
        {%- set schema = custom_schema_name | trim -%}
    {%- endif -%}
    {%- if prefix -%}
        {{ prefix }}_{{ schema }}
    {%- else -%}
        {{ schema }}
    {%- endif -%}
{%- endmacro %}
