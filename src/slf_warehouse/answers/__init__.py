"""Answers to council inquiries: figures from the warehouse's marts, rendered as a Danish letter (PDF).

- ``render.render_inquiry(warehouse_path, inquiry_path, out_dir, *, run_info=None)`` → ``RenderedAnswer``
- ``inquiry.load_inquiry(path)``: validate an inquiry YAML (``inquiries/*.yaml``)
- ``figures.FIGURES``: the figure registry; ``formatting``: Danish number and date formats (Babel)

Nothing heavy is imported here: DuckDB and WeasyPrint are imported inside ``render_inquiry``.
"""
