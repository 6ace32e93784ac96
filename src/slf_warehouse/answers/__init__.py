"""Answers to council inquiries: figures from the warehouse's marts, rendered as a Danish letter (PDF).

- ``render.render_inquiry(warehouse, inquiry_path, out_dir, *, run_info=None, previous=None)``: the
  warehouse a DuckDB file or a ``warehouse_reader.PostgresSource`` (a published PostgreSQL version)
  → ``RenderedAnswer`` (PDF/UA, HTML, ``<stem>.figures.json``, ``.changes`` since the last edition)
- ``published.answer_from_published(inquiry, output_dir)``: the same from the published warehouse
  on the engine ``SLF_WAREHOUSE_ENGINE`` names (what ``dags/slf_answer_inquiry.py`` runs)
- ``inquiry.load_inquiry(path)``: validate an inquiry YAML (``inquiries/*.yaml``)
- ``figures.FIGURES``: the figure registry
- ``exhibits``: tables and charts under an answer
- ``changes``: the figures sidecar and what changed; ``workdays``: holidays and the 10-day deadline

Danish formatting, the SVG charts and the PDF rendering are ``slf_warehouse.rendering``'s, shared
with the quality report. Nothing heavy is imported here: DuckDB, psycopg2 and WeasyPrint are
imported inside ``render_inquiry``.
"""
