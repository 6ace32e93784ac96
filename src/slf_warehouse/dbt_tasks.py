"""The dbt step of slf_refresh as Cosmos tasks, in the shapes that were measured (docs/performance.md).

- ``build`` (the default, and always under `slf run`): one `dbt build` task: dbt starts once, runs
  models, seeds and tests in order; the UI shows one task and its log lists every node.
- ``watcher``: Cosmos' watcher mode: one producer runs `dbt build`, one sensor per model (and one
  per model's tests) shows that model's status in the UI. What `slf airflow` and docker-compose
  run under the scheduler; never under `dag.test()` (`slf run` uses ``build``).
- ``layers``: one `dbt build` per layer (seeds+staging, intermediate, marts).
- ``local``: Cosmos' default, one task per model with its tests (TestBehavior.BUILD).

Called at DAG-parse time: Cosmos is imported here (not dbt, GE or WeasyPrint), and the node list
comes from a manifest built ahead (`dbt parse`), never from running `dbt ls` while parsing.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from slf_warehouse.pg_connection import export_airflow_connection

MODES = ("build", "watcher", "layers", "local")
PRODUCTION_EXCLUDED_RESOURCE_TYPES = "unit_test"
LAYERS = (
    ("seeds_staging", "resource_type:seed path:models/staging"),
    ("intermediate", "path:models/intermediate resource_type:snapshot"),
    ("marts", "path:models/marts path:tests"),
)


def dbt_mode() -> str:
    mode = os.environ.get("SLF_DBT_MODE", "build")
    if mode not in MODES:
        raise ValueError(f"SLF_DBT_MODE={mode!r}: expected one of {', '.join(MODES)}")
    return mode


DOCS_FILES = ("index.html", "static_index.html", "manifest.json", "catalog.json")
# What `dbt docs generate --no-compile` needs from the build: the compiled manifest and dbt's
# parse cache (valid because the docs task uses the same project and profile).
KEPT_TARGET_FILES = ("manifest.json", "partial_parse.msgpack")
KEPT_TARGET_DIR = "dbt_target"
# Seconds between a watcher sensor's looks at the producer's XComs (Cosmos' default 10 s left the
# last sensors 8,8 s behind the producer's end against 4–5 s with 2 s; docs/performance.md).
WATCHER_POKE_INTERVAL = 2
WATCHER_SENSOR_TIMEOUT = timedelta(hours=2)


def output_dir_macro(params: dict[str, Any]) -> str:
    """The DAG's `slf_output_dir(params)` macro: the output folder as the tasks resolve it, for
    templated fields of operators that run elsewhere (Cosmos runs dbt in a temporary folder)."""
    from slf_warehouse.refresh_run import refresh_settings

    return str(refresh_settings(params).output_dir)


def build_path_macro(build_ref: str) -> str:
    """The DAG's `slf_build_path(xcom)` macro: SLF_WAREHOUSE_PATH for dbt from prepare_build's
    build reference (the file on DuckDB, '' on PostgreSQL)."""
    from slf_warehouse.build_ref import BuildRef

    return BuildRef.from_xcom(build_ref).warehouse_path


def build_schema_prefix_macro(build_ref: str) -> str:
    """The DAG's `slf_build_schema_prefix(xcom)` macro: SLF_DBT_BUILD_SCHEMA_PREFIX for dbt (the
    build's schemas on PostgreSQL, '' on DuckDB)."""
    from slf_warehouse.build_ref import BuildRef

    return BuildRef.from_xcom(build_ref).schema_prefix


BUILD_MACROS = {"slf_build_path": build_path_macro, "slf_build_schema_prefix": build_schema_prefix_macro}


def dbt_target_name() -> str:
    """The profiles.yml target of the engine SLF_WAREHOUSE_ENGINE names (read when the DAG is
    parsed: the scheduler's, workers' and `slf run`'s environments carry the same setting)."""
    from slf_warehouse.warehouse_reader import engine_from_env

    return engine_from_env()


def build_env(build_xcom: str) -> dict[str, str]:
    """The templated environment that points dbt at the run's build, on either engine: from the
    Jinja expression of prepare_build's XCom (a build_ref.BuildRef; never a password, which
    dbt's postgres target reads from the task's own SLF_PG_* environment)."""
    from slf_warehouse.build_ref import BUILD_PREFIX_ENV

    return {
        "SLF_WAREHOUSE_PATH": f"{{{{ slf_build_path({build_xcom}) }}}}",
        BUILD_PREFIX_ENV: f"{{{{ slf_build_schema_prefix({build_xcom}) }}}}",
    }


def kept_target_dir(output_dir: str | Path) -> Path:
    """OUT/dbt_target: the last dbt build's manifest and parse cache (one refresh runs at a time)."""
    return Path(output_dir) / KEPT_TARGET_DIR


def keep_dbt_target(project_dir: str | Path, context: Any = None, **_: Any) -> Path:
    """Cosmos callback of the build: keep its manifest and parse cache out of Cosmos' temporary
    project copy, so the docs task neither parses nor compiles the project again (10 s → 4 s)."""
    import shutil

    from slf_warehouse.refresh_run import refresh_settings

    params = context["params"]
    target = kept_target_dir(refresh_settings(params).output_dir)
    target.mkdir(parents=True, exist_ok=True)
    for name in KEPT_TARGET_FILES:
        source = Path(project_dir) / "target" / name
        if source.is_file():
            shutil.copyfile(source, target / name)
    return target


def save_dbt_docs(project_dir: str | Path, context: Any = None, **_: Any) -> Path:
    """Cosmos callback: copy the generated docs out of Cosmos' temporary project copy to OUT/dbt_docs."""
    import shutil

    from slf_warehouse.refresh_run import refresh_settings

    params = context["params"]
    output_dir = refresh_settings(params).output_dir
    target = output_dir / "dbt_docs"
    target.mkdir(parents=True, exist_ok=True)
    for name in DOCS_FILES:
        # written to the kept target (--target-path), or to the temporary copy's target without one
        for folder in (kept_target_dir(output_dir), Path(project_dir) / "target"):
            if (folder / name).is_file():
                shutil.copyfile(folder / name, target / name)
                break
    return target


def dbt_docs_task(project_dir: Path, build_xcom: str, pool: str) -> Any:
    """`dbt docs generate --static` on the build (after the quality step, before publication);
    `OUT/dbt_docs/static_index.html` opens from disk. `build_xcom`: see build_env."""
    from cosmos import ProfileConfig
    from cosmos.constants import InvocationMode
    from cosmos.operators.local import DbtDocsLocalOperator

    return DbtDocsLocalOperator(
        task_id="dbt_docs",
        project_dir=str(project_dir),
        profile_config=ProfileConfig(
            profile_name="slf_warehouse",
            target_name=dbt_target_name(),
            profiles_yml_filepath=str(project_dir / "profiles.yml"),
        ),
        invocation_mode=InvocationMode.SUBPROCESS,
        dbt_executable_path=str(Path(sys.executable).with_name("dbt")),
        # The build's manifest and parse cache (keep_dbt_target): no second parse and compile.
        dbt_cmd_flags=[
            "--static",
            "--no-compile",
            "--target-path",
            f"{{{{ slf_output_dir(params) }}}}/{KEPT_TARGET_DIR}",
        ],
        env=build_env(build_xcom),
        append_env=True,
        # dbt's postgres target from the Airflow connection SLF_PG_CONN_ID names, where set
        pre_execute=export_airflow_connection,
        install_deps=False,
        pool=pool,
        callback="slf_warehouse.dbt_tasks.save_dbt_docs",
    )


def dbt_tasks(project_dir: Path, build_xcom: str, pool: str, mode: str | None = None) -> Any:
    """The dbt step; returns the task or task group to chain between ingestion and quality.
    `build_xcom`: the Jinja expression of the run's build reference (see build_env)."""
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior
    from cosmos.operators.local import DbtBuildLocalOperator

    mode = mode or dbt_mode()
    dbt = str(Path(sys.executable).with_name("dbt"))
    profile = ProfileConfig(
        profile_name="slf_warehouse",
        target_name=dbt_target_name(),
        profiles_yml_filepath=str(project_dir / "profiles.yml"),
    )
    # dbt runs as a subprocess so none of its DuckDB handles outlive the task (dag.test runs all
    # tasks in one process), and every task writing the warehouse takes the one-writer pool.
    # Unit tests check the models' logic on fixed rows, not the data: they run in the test suite
    # and CI (tests/), not in every scheduled refresh, as dbt recommends.
    common: dict[str, Any] = {
        "env": {**build_env(build_xcom), "DBT_EXCLUDE_RESOURCE_TYPES": PRODUCTION_EXCLUDED_RESOURCE_TYPES},
        "append_env": True,
        # dbt's postgres target (profiles.yml reads SLF_PG_*) from the Airflow connection
        # SLF_PG_CONN_ID names, where set: exported into the task's environment, which Cosmos
        # passes on to dbt (append_env), so no password is ever in a rendered template
        "pre_execute": export_airflow_connection,
        # the DAG's param; test operators drop it
        "full_refresh": "{{ params.full_refresh }}",
        "install_deps": False,
        "pool": pool,
        # keeps run_results.json for the run history (imported when it runs)
        "callback": [
            "slf_warehouse.quality.history.save_dbt_run_results",
            "slf_warehouse.dbt_tasks.keep_dbt_target",
            # a failed test's rows: their delivered file and line
            "slf_warehouse.dbt_failures.log_failing_rows",
        ],
    }

    if mode == "build":
        return DbtBuildLocalOperator(
            task_id="dbt_build",
            project_dir=str(project_dir),
            profile_config=profile,
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=dbt,
            **common,
        )
    if mode == "layers":
        tasks = [
            DbtBuildLocalOperator(
                task_id=f"dbt_build_{name}",
                project_dir=str(project_dir),
                profile_config=profile,
                invocation_mode=InvocationMode.SUBPROCESS,
                dbt_executable_path=dbt,
                select=selector,
                # a test runs in the layer where all of its parents are built
                indirect_selection="cautious",
                **common,
            )
            for name, selector in LAYERS
        ]
        for upstream, downstream in pairwise(tasks):
            upstream >> downstream
        return tasks
    watcher = mode == "watcher"
    setup_args: dict[str, Any] = {}
    if watcher:
        # Only the producer runs dbt, so only it takes the writer pool and keeps the run's results
        # (setup_operator_args). The sensors write nothing: in the one-slot pool they ran one after
        # another once dbt had finished (114 s of a 178 s run), and a sensor holding the slot
        # would keep the producer waiting.
        setup_args = {
            "pool": common.pop("pool"),
            "callback": common.pop("callback"),
            "execution_timeout": None,
        }
        # The sensors poke in their worker instead of deferring: on Airflow 3.3 a deferred task
        # that resumes quickly can be failed by the executor's late "success" for its defer exit
        # (apache/airflow#71580, #72716; 1 of 6 runs here). At most ~10 wait at once on this project.
        common["deferrable"] = False
        common["poke_interval"] = WATCHER_POKE_INTERVAL
        # Bounded: a sensor whose producer never reports must not hold the run (and, with
        # max_active_runs=1, every later one) for the sensor default of 7 days.
        common["execution_timeout"] = WATCHER_SENSOR_TIMEOUT
    return DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(
            dbt_project_path=project_dir, manifest_path=project_dir / "target" / "manifest.json"
        ),
        profile_config=profile,
        # Watcher's producer already runs `dbt build`; per-model tasks run each model with its tests.
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=(TestBehavior.AFTER_EACH if watcher else TestBehavior.BUILD),
            # local: a test of several models (relationships, cross-source rules) waits for all of
            # them. watcher: such a test counts in each parent's test sensor (the producer's `dbt
            # build` orders it), so it needs no sensor of its own.
            should_detach_multiple_parents_tests=not watcher,
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER if watcher else ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=dbt,
            setup_operator_args=setup_args or None,
        ),
        operator_args=common,
    )
