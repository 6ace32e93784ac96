"""Render an inquiry's answer templates in a child process with a time and a memory limit.

The Jinja2 sandbox decides what a template may touch; it does not bound what it costs:
``{{ "x" * 10**8 }}``, ``"x" | center(10**9)`` or two nested ``range(99999)`` loops run as long and
take as much memory as they like (2,3 GB and 40 s for the first, before it was stopped). Limits
inside the sandbox (intercepting ``*``, capping ``range``, budgets per operation) would have to know
every filter, string method and C routine that can allocate or loop, and still could not stop a
single long C call. The operating system can: the answers are rendered in a fresh Python process
(``python -I``, a minimal environment without the service's secrets, no inherited file
descriptors) that sets ``RLIMIT_AS`` (memory), ``RLIMIT_CPU`` and ``RLIMIT_FSIZE`` = 0 (it writes no
files) on itself before it reads a template, while the parent waits at most ``seconds`` of wall
clock and kills it after. A fresh process rather than a fork: it inherits no threads, locks or
open warehouse connections from the service, and its memory limit is an absolute number.

What goes in: the answer texts and the template context (figures are frozen, picklable objects),
pickled by the trusted parent. What comes back: JSON lines only, one "started" line per answer (so a
limit names the question it hit) and the rendered texts; nothing the child sends is unpickled.
Each rendered answer is also capped in length (``answer_chars``).

Cost: starting the child and importing Jinja2 and Babel there, about 0,15-0,2 s per inquiry.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RenderLimits:
    seconds: float = 10.0  # wall clock for all of one inquiry's answers, the child's start included
    memory_mb: int = 512  # the child's whole address space (Python, Jinja2 and Babel take about 60 MB)
    answer_chars: int = 200_000  # one rendered answer (the seed letter's longest: about 1.500)


DEFAULT_LIMITS = RenderLimits()


class AnswerRenderError(Exception):
    """One answer could not be rendered: ``index`` is its question's position (None: before any)."""

    def __init__(self, index: int | None, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason


def _package_root() -> str:
    return str(Path(__file__).resolve().parents[2])  # the folder holding slf_warehouse/


def _child_environment() -> dict[str, str]:
    """Only what Python needs: not the pseudonym key, tokens or passwords the service may hold."""
    env = {"PYTHONHASHSEED": "0", "PYTHONIOENCODING": "utf-8", "LC_ALL": "C.UTF-8"}
    if "PATH" in os.environ:
        env["PATH"] = os.environ["PATH"]
    return env


_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from slf_warehouse.answers.sandbox_run import child_main; child_main(sys.argv[2:])"
)


def render_answer_texts(
    answers: list[str], context: dict[str, Any], limits: RenderLimits = DEFAULT_LIMITS
) -> list[str]:
    """Each answer template rendered with ``context``; AnswerRenderError names the answer and why."""
    payload = pickle.dumps({"answers": list(answers), "context": context}, protocol=pickle.HIGHEST_PROTOCOL)
    command = [
        sys.executable,
        "-I",
        "-c",
        _BOOTSTRAP,
        _package_root(),
        str(limits.memory_mb),
        str(max(1, int(limits.seconds + 0.999))),
        str(limits.answer_chars),
    ]
    proc = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_child_environment(),
        close_fds=True,
        cwd="/",
    )
    timed_out = False
    try:
        out, _ = proc.communicate(payload, timeout=limits.seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.kill()
        out, _ = proc.communicate()
    started: int | None = None
    for line in out.decode("utf-8", "replace").splitlines():
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "started" in message:
            started = message["started"]
        elif "error" in message:
            raise AnswerRenderError(message["error"]["index"], message["error"]["reason"])
        elif "answers" in message and proc.returncode == 0 and not timed_out:
            rendered: list[str] = message["answers"]  # what the child process printed as JSON
            return rendered
    if timed_out or proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise AnswerRenderError(
            started, f"stopped: rendering took longer than the limit of {limits.seconds:g} s"
        )
    raise AnswerRenderError(
        started, f"the rendering process ended without a result (exit status {proc.returncode})"
    )


# --- the child ------------------------------------------------------------------------------------


def _limit_self(memory_mb: int, cpu_seconds: int) -> None:
    import resource

    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def _send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def child_main(argv: list[str]) -> None:
    memory_mb, cpu_seconds, answer_chars = int(argv[0]), int(argv[1]), int(argv[2])
    from jinja2 import TemplateError

    from slf_warehouse.answers import figures  # noqa: F401  (the context's classes, before the limit)
    from slf_warehouse.answers.templating import answer_environment

    env = answer_environment()
    _limit_self(memory_mb, cpu_seconds)
    job = pickle.loads(sys.stdin.buffer.read())
    texts = []
    for i, answer in enumerate(job["answers"]):
        _send({"started": i})
        try:
            text = env.from_string(answer).render(job["context"])
        except MemoryError:
            _send(
                {
                    "error": {
                        "index": i,
                        "reason": f"stopped: rendering needed more than the memory limit of {memory_mb} MB",
                    }
                }
            )
            return
        except RecursionError:
            _send({"error": {"index": i, "reason": "stopped: recursion too deep"}})
            return
        except (TemplateError, ArithmeticError, TypeError, ValueError, AttributeError, LookupError) as e:
            # the sandbox's refusals, undefined names and its own limits (a range too big) alike
            _send({"error": {"index": i, "reason": f"{type(e).__name__}: {e}"}})
            return
        if len(text) > answer_chars:
            _send(
                {
                    "error": {
                        "index": i,
                        "reason": f"stopped: the answer renders to {len(text):,} characters; "
                        f"the limit is {answer_chars:,}".replace(",", "."),
                    }
                }
            )
            return
        texts.append(text)
    _send({"answers": texts})
