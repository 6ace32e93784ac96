"""The quality override decision's parts that need no running Airflow: who may answer (a role, not a
list of logins), which folders a refresh task may use, and the DAG's shape around the decision."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from slf_warehouse.refresh_run import PathParamRefused, embedded_run, is_embedded, refresh_settings


def _user(username: str, *roles: str) -> SimpleNamespace:
    return SimpleNamespace(username=username, id=7, roles=[SimpleNamespace(name=r) for r in roles])


@pytest.mark.airflow  # imports FAB's auth manager
def test_the_decision_is_answered_by_the_finance_lead_role() -> None:
    from slf_warehouse.auth_manager import SlfAuthManager
    from slf_warehouse.deployment import FINANCE, FINANCE_LEAD, role_permissions
    from slf_warehouse.hitl_roles import role_assignee
    from slf_warehouse.override_decision import DECIDERS_ROLE

    assert DECIDERS_ROLE == FINANCE_LEAD
    assigned = {role_assignee(FINANCE_LEAD, "økonomiledere")["id"]}
    manager = SlfAuthManager.__new__(SlfAuthManager)
    assert manager.is_authorized_hitl_task(assigned_users=assigned, user=_user("lead", FINANCE_LEAD))
    for outsider in (_user("hanne", FINANCE), _user("ops", "Admin"), _user(f"role:{FINANCE_LEAD}")):
        assert not manager.is_authorized_hitl_task(assigned_users=assigned, user=outsider), outsider
    # logins still match as before (the approvals of answer letters)
    assert manager.is_authorized_hitl_task(assigned_users={"tmedom"}, user=_user("tmedom"))
    roles = role_permissions()
    assert ("can_edit", "HITL Detail") in roles[FINANCE_LEAD]
    assert ("can_edit", "HITL Detail") not in roles[FINANCE]  # finance staff trigger, leads decide
    assert set(roles[FINANCE]) < set(roles[FINANCE_LEAD])


def test_a_shared_run_takes_its_folders_from_configuration_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLF_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("SLF_OUTPUT_DIR", str(tmp_path / "out"))
    assert not is_embedded()
    settings = refresh_settings({"quality_override": "", "full_refresh": False})
    assert (settings.landing_dir, settings.output_dir) == (tmp_path / "landing", tmp_path / "out")
    for params in ({"output_dir": "/etc"}, {"landing_dir": str(tmp_path)}):
        with pytest.raises(PathParamRefused) as refused:
            refresh_settings(params)
        assert f"param(s) {next(iter(params))} not accepted" in str(refused.value)
        assert "SLF_OUTPUT_DIR" in str(refused.value)
    # `slf run`'s embedded dag.test() passes its folders in the conf
    with embedded_run():
        settings = refresh_settings({"landing_dir": str(tmp_path / "l2"), "output_dir": str(tmp_path / "o2")})
    assert (settings.landing_dir, settings.output_dir) == (tmp_path / "l2", tmp_path / "o2")
    assert not is_embedded()


@pytest.mark.airflow
@pytest.mark.usefixtures("airflow_db")
def test_refresh_has_no_path_params_and_decides_before_publishing(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("SLF_DBT_MODE", "build")
    dag = DagBag().get_dag("slf_refresh")
    assert not {"landing_dir", "output_dir"} & set(dag.params)
    decision = dag.get_task("quality_decision")
    assert decision.upstream_task_ids == {"quality_checkpoint"}
    assert "quality_decision" in dag.get_task("publish").get_flat_relative_ids(upstream=True)
    assert decision.options == ["Offentliggør alligevel", "Stop"]
    assert set(decision.params) == {"begrundelse"}  # the DAG's own params are not on the form
    assert decision.assigned_users == [
        {"id": "role:slf_finance_lead", "name": "økonomiledere (slf_finance_lead)"}
    ]
    assert decision.response_timeout.total_seconds() == 12 * 3600
