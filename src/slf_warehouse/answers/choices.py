"""The inquiries a trigger form offers: every file in ``inquiries/``, by name, shown by subject and party.

Read when the DAG file is parsed, so it only reads YAML (no pydantic, no Jinja): a file that does
not parse is still listed, marked, and choosing it fails in the run with the loader's full message.
"""

from __future__ import annotations

from pathlib import Path


def inquiry_choices(inquiries_dir: Path | None = None) -> dict[str, str]:
    """``{stem: "subject – party (kind)"}`` for every ``*.yaml`` in ``inquiries_dir``, by name."""
    import yaml

    if inquiries_dir is None:
        from slf_warehouse.settings import project_dir

        inquiries_dir = project_dir() / "inquiries"
    choices = {}
    for path in sorted(Path(inquiries_dir).glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            data = None
        if isinstance(data, dict) and data.get("subject") and data.get("party"):
            choices[path.stem] = f"{data['party']}: {data['subject']} ({data.get('kind') or 'forespørgsel'})"
        else:
            choices[path.stem] = f"{path.stem} (filen kan ikke læses)"
    return choices
