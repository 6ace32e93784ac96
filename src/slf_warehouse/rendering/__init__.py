"""How the answer letters (``answers/``) and the quality report (``quality/report.py``) are rendered:
the parts both use, so neither imports the other's.

- ``formatting``: Danish number and date formats (Babel)
- ``charts``: SVG charts drawn from numbers, and the primitives they are drawn with
- ``templates``: the ``report_templates/`` folder, the Jinja2 environment, the inlined stylesheets
- ``pdf``: HTML to PDF with WeasyPrint (PDF/UA-1 unless told otherwise, the same bytes for the same
  HTML), only the project's own files fetched (``fetcher``), written atomically

Nothing heavy is imported here: WeasyPrint only inside ``pdf.html_to_pdfs``.
"""
