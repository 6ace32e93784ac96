"""Run one DAG end to end in this process with `dag.test()` and exit non-zero unless it succeeded.

Called by `slf run` in a subprocess whose environment already points Airflow at the project.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    dag_id, conf = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag()
    if bag.import_errors:
        for path, error in bag.import_errors.items():
            print(f"DAG import error in {path}:\n{error}", file=sys.stderr)
        return 2
    dag = bag.get_dag(dag_id)
    if dag is None:
        print(f"no DAG {dag_id!r} in {bag.dag_folder}", file=sys.stderr)
        return 2
    run = dag.test(run_conf=conf)
    tis = sorted(run.get_task_instances(), key=lambda ti: (ti.start_date is None, ti.start_date))
    failed = [ti.task_id for ti in tis if ti.state not in ("success", "skipped")]
    # What each task took (the benchmark reads it), and each DAG file's parse time as the
    # dag-processor measures it (DagBag's own statistics).
    tasks = [{"task_id": ti.task_id, "state": str(ti.state),
              "start": ti.start_date.timestamp() if ti.start_date else None,
              "end": ti.end_date.timestamp() if ti.end_date else None} for ti in tis]
    parse = {Path(stat.file).name: stat.duration.total_seconds() for stat in bag.dagbag_stats}
    print(json.dumps({"dag_id": dag_id, "run_id": run.run_id, "state": str(run.state), "not_succeeded": failed,
                      "tasks": tasks, "parse_seconds": parse}))
    return 0 if str(run.state) == "success" and not failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
