"""file_names.slug: the one way a run id becomes a file or folder name (warehouse versions, the
quality report's archive, dbt's run results, the letters' review folders)."""

from __future__ import annotations

from pathlib import Path

from slf_warehouse.answers.approval import review_folder
from slf_warehouse.file_names import slug
from slf_warehouse.quality.history import dbt_run_results_dir

RUN_ID = "manual__2026-12-01T16:25:05.123456+00:00"


def test_an_airflow_run_id_becomes_one_safe_path_component() -> None:
    assert slug(RUN_ID) == "manual__2026-12-01T16_25_05.123456_00_00"
    assert slug("../../etc/passwd") == ".._.._etc_passwd"  # no separator survives
    assert slug("a b\tc/ø") == "a_b_c_"


def test_names_are_cut_at_their_length() -> None:
    long_id = "scheduled__" + "x" * 200
    assert len(slug(long_id)) == 80
    assert slug(long_id, max_length=100) == long_id[:100]


def test_the_steps_name_a_run_s_folders_by_it(tmp_path: Path) -> None:
    long_id = "scheduled__" + "x" * 200
    assert dbt_run_results_dir(tmp_path, RUN_ID).name == slug(RUN_ID)
    assert dbt_run_results_dir(tmp_path, long_id).name == long_id[:80]
    # a review folder keeps the 100 characters it always had, so an existing draft is still found
    assert review_folder(tmp_path, long_id).name == long_id[:100]
    assert review_folder(tmp_path, RUN_ID) == tmp_path / "review" / slug(RUN_ID)
