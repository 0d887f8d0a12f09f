"""The README's commands work as written: every ```sh block of "Try it with curl" runs here,
line by line, in bash, against a local stack of its own.

The test fills in only what a reader fills in: the stack's ports (free ones, not 8000/8001/8420)
and each `NAME=...   # the FIELD` placeholder, from FIELD (a dotted path) of the JSON the line
before answered. A line ending in `# until "FIELD": VALUE` is repeated until it says so (the
webhook it waits for comes a moment later). Answers must be JSON without an `error`, and carry
the fields their `# -> {...}` line shows. The WebSocket line gets typed what the README says to
type. The web client's steps name buttons and fields the page really has.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import running_stack

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
PLACEHOLDER = re.compile(r"^([A-Z_]+)=\.\.\.\s+# the ([\w.]+)$")
UNTIL = re.compile(r'#\s*until ("\w+": .+)$')
EXPECTED = re.compile(r"^# -> (\{.*\})$")
TYPED = '{"action": "ping"}'


def section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def command_lines(text: str) -> list[str]:
    """The logical lines of every ```sh block (backslash continuations joined)."""
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        pending = ""
        for raw in block.splitlines():
            if raw.endswith("\\"):
                pending += raw[:-1]
                continue
            lines.append((pending + raw).strip())
            pending = ""
    return [line for line in lines if line]


def top_level_keys(shown: str) -> set[str]:
    """The keys of the outer object of a `# -> {...}` line (which is not quite JSON)."""
    keys, depth = set(), 0
    for match in re.finditer(r'[{}\[\]]|"(\w+)":', shown):
        token = match.group(0)
        depth += {"{": 1, "[": 1, "}": -1, "]": -1}.get(token, 0)
        if match.group(1) and depth == 1:
            keys.add(match.group(1))
    return keys


def field(answer: Any, path: str) -> Any:
    for part in path.split("."):
        assert isinstance(answer, dict) and part in answer, f"no {path} in {answer!r}"
        answer = answer[part]
    return answer


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A stack of the README's own: it signs the founder in, which spends a code of five."""
    with running_stack(tmp_path_factory.mktemp("readme") / "stack.log") as info:
        yield info


class Reader:
    """Someone at a terminal in the project's folder, following the README."""

    def __init__(self, stack: dict[str, Any]) -> None:
        self.ports = {
            "localhost:8000": stack["rest"].removeprefix("http://"),
            "127.0.0.1:8000": stack["rest"].removeprefix("http://"),
            "ws://127.0.0.1:8001/api": stack["websocket"],
            "localhost:8420": stack["stripe"].removeprefix("http://"),
            "127.0.0.1:8420": stack["stripe"].removeprefix("http://"),
        }
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SALON_"))}
        self.answer: Any = None
        self.answers: dict[str, Any] = {}

    def localize(self, line: str) -> str:
        for documented, actual in self.ports.items():
            line = line.replace(documented, actual)
        return line

    def bash(self, line: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            ["bash", "-c", self.localize(line)],
            cwd=ROOT,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"{line}\n{done.stderr}"
        return done.stdout

    def run(self, line: str) -> None:
        if placeholder := PLACEHOLDER.match(line):
            name, path = placeholder.groups()
            self.env[name] = str(field(self.answer, path))
        elif expected := EXPECTED.match(line):
            shown = top_level_keys(expected.group(1))
            assert isinstance(self.answer, dict) and shown <= set(self.answer), (line, self.answer)
        elif line.startswith("#"):
            return
        elif "-m websockets" in line:
            self.websocket(line)
        elif until := UNTIL.search(line):
            key, value = next(iter(json.loads("{" + until.group(1) + "}").items()))
            deadline = time.monotonic() + 20
            while True:
                self.curl(line)
                if self.answer.get(key) == value or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            assert self.answer.get(key) == value, (line, self.answer)
        else:
            self.curl(line)

    def curl(self, line: str) -> None:
        out = self.bash(line).strip()
        if "localhost:8000" not in line and not out.startswith("{"):
            return  # the onboarding page sends the creator back to Salon (303: See Other)
        self.answer = json.loads(out)
        self.answers[line] = self.answer
        error = self.answer.get("error") if isinstance(self.answer, dict) else None
        assert not error, f"{line}\n-> {out}"

    def websocket(self, line: str) -> None:
        """Type the README's message into the interactive client, wait for Salon's answer."""
        process = subprocess.Popen(
            ["bash", "-c", self.localize(line)],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdin is not None and process.stdout is not None
        try:
            seen = ""
            deadline = time.monotonic() + 20
            while "Connected to" not in seen and time.monotonic() < deadline:
                seen += process.stdout.readline()
            process.stdin.write(TYPED + "\n")
            process.stdin.flush()
            while '"pong"' not in seen and time.monotonic() < deadline:
                seen += process.stdout.readline()
            assert '"pong"' in seen, seen
        finally:
            process.stdin.close()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def test_the_curl_section_runs_as_written(stack: dict[str, Any]) -> None:
    lines = command_lines(section("Try it with curl"))
    assert len(lines) > 20, "the README lost its commands"
    reader = Reader(stack)
    for line in lines:
        reader.run(line)
    (earnings,) = [a for line, a in reader.answers.items() if "/me/earnings" in line]
    assert earnings["total_cents"] == 500, earnings  # the friend's tip reached the founder


def test_the_readme_says_what_to_type_into_the_websocket() -> None:
    assert f"`{TYPED}`" in section("Try it with curl")


def test_every_json_request_of_the_readme_says_it_is_json() -> None:
    for line in command_lines(README):
        if line.startswith("curl") and "-d '{" in line:
            assert "-H 'Content-Type: application/json'" in line, line


def test_every_port_variable_of_the_stack_is_in_the_readme() -> None:
    stack_py = (ROOT / "local" / "stack.py").read_text()
    ports = set(re.findall(r'"(SALON_\w+_PORT)"', stack_py))
    assert ports >= {"SALON_REST_PORT", "SALON_STRIPE_PORT"}
    assert {p for p in ports if f"`{p}`" not in README} == set()


def test_the_web_client_steps_name_what_the_page_shows() -> None:
    steps = section("Try the web client").split("\n1. ", 1)[1].split("\n\n", 1)[0]
    italics = re.findall(r"(?<!\*)\*([A-Z][^*]+)\*(?!\*)", steps)
    names = {" ".join(name.split()) for name in italics}
    page = (ROOT / "web" / "app.js").read_text() + (ROOT / "web" / "index.html").read_text()
    page += (ROOT / "local" / "stripe" / "server.py").read_text()  # the onboarding page
    # A label is a string of its own ('Start room'), or starts one (`Pay ${dollars(...)}`).
    missing = {n for n in names if not re.search(rf"['`>]{re.escape(n)}['`< ]", page)}
    assert names and missing == set(), f"README steps the page does not have: {missing}"


def test_the_local_sign_in_limits_the_readme_states_are_the_stacks() -> None:
    from chalicelib.config import Settings

    said = section("Try it with curl")
    defaults = Settings()
    assert f"Each number gets {defaults.sign_in_starts_per_phone_per_hour} codes an hour" in said
    assert f"each code {defaults.sign_in_max_attempts} attempts" in said
    assert f"each address {defaults.sign_in_starts_per_ip_per_hour} sign-ins an hour" in said
    for variable in (
        "SALON_SIGN_IN_STARTS_PER_PHONE_PER_HOUR",
        "SALON_SIGN_IN_STARTS_PER_IP_PER_HOUR",
    ):
        assert variable in said and variable in (ROOT / "chalicelib" / "config.py").read_text()
