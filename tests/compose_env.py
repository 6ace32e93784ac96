"""docker-compose.yml read as Compose reads it, so tests run the services' settings and commands.

`${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `${VAR?message}` and `$$` are
substituted from an env file; YAML merge keys (`<<: *airflow-common`) are resolved by PyYAML.
`localise` then maps what only exists inside the containers to this machine: service host names
to 127.0.0.1 and the test's ports, container paths (the image's, from the Dockerfile's COPY and
ENV lines, and the volumes') to folders here.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class MissingVariable(Exception):
    pass


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name.strip()] = value
    return values


def substitute(text: str, variables: dict[str, str]) -> str:
    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        value = variables.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-"):
            return arg if unset else value
        if op in (":?", "?"):
            if unset:
                raise MissingVariable(f"{name}: {arg or 'required'}")
            return value
        return value or ""

    return _VAR.sub(one, text)


def load(variables: dict[str, str], path: Path = PROJECT / "docker-compose.yml") -> dict:
    """The compose file with every variable substituted (as `docker compose config` would)."""
    return yaml.safe_load(substitute(path.read_text(encoding="utf-8"), variables))


def image_paths(dockerfile: Path = PROJECT / "Dockerfile") -> dict[str, Path]:
    """Container path -> checkout path for what the Dockerfile COPYs from the build context."""
    paths: dict[str, Path] = {}
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        words = shlex.split(line) if line.startswith("COPY ") else []
        args = [w for w in words[1:] if not w.startswith("--")]
        if len(args) == 2:
            paths[args[1].rstrip("/")] = PROJECT / args[0]
        elif len(args) > 2 and args[-1].endswith("/"):
            paths[args[-1].rstrip("/")] = PROJECT  # several files into the project's folder
    return paths


def localise(
    env: dict[str, str], hosts: dict[str, tuple[int, int]], paths: dict[str, Path]
) -> dict[str, str]:
    """Service hosts -> 127.0.0.1 (`hosts`: service -> (container port, port here)); container paths ->
    paths here (longest prefix first)."""
    out, ports = {}, {}
    for key, value in env.items():
        value = str(value)
        for service, (inner, outer) in hosts.items():
            value = re.sub(rf"(?<=[@/]){re.escape(service)}:{inner}\b", f"127.0.0.1:{outer}", value)
            if value == service:  # a host setting alone (SLF_PG_HOST): its _PORT sibling follows
                value = "127.0.0.1"
                port_key = key.removesuffix("_HOST") + "_PORT"
                if str(env.get(port_key)) == str(inner):
                    ports[port_key] = str(outer)
        for inner_path in sorted(paths, key=len, reverse=True):
            if value == inner_path or value.startswith(inner_path + "/"):
                value = str(paths[inner_path]) + value[len(inner_path) :]
                break
        out[key] = value
    return {**out, **ports}


def volume_paths(service: dict, named: dict[str, Path]) -> dict[str, Path]:
    """Container path -> folder here for a service's volumes (`named` gives the named volumes' folders)."""
    paths = {}
    for spec in service.get("volumes", []):
        source, target = spec.split(":")[:2]
        paths[target] = named[source] if source in named else Path(source)
    return paths
