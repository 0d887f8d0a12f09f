"""Janus on loopback for the local stack, the tests and the benches: Debian's `janus`, with
only the VideoRoom plugin and the HTTP transport, both API secrets, and ICE on loopback.

Janus leaves loopback interfaces out when it gathers ICE candidates (before `ice_enforce_list`
applies), so on a loopback-only host every PeerConnection would fail. A small `LD_PRELOAD`
shim (`getifaddrs_shim.c`, built here with the system's C compiler) clears `IFF_LOOPBACK` in
what `getifaddrs()` returns, for Janus's process only.

Only Salon's functions are given the secrets; browsers and the benches' listeners reach Janus's
media ports (ICE, DTLS, RTP), never its API.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path

from local.stack import free_port

JANUS = "/usr/bin/janus"
LIBDIR = Path("/usr/lib/x86_64-linux-gnu/janus")
SHIM_SOURCE = Path(__file__).with_name("getifaddrs_shim.c")
BUILD = Path(__file__).resolve().parent.parent / "build" / "janus"
LOCALHOST = "127.0.0.1"


def _libdir() -> Path:
    """Where Debian put Janus's plugins for this machine's architecture."""
    for candidate in sorted(Path("/usr/lib").glob("*/janus")):
        if (candidate / "plugins" / "libjanus_videoroom.so").exists():
            return candidate
    return LIBDIR


def available() -> bool:
    return Path(JANUS).exists() and (_libdir() / "plugins" / "libjanus_videoroom.so").exists()


def build_shim() -> Path:
    """Compile the getifaddrs shim once (and again when its source changes)."""
    BUILD.mkdir(parents=True, exist_ok=True)
    target = BUILD / "libgetifaddrs_shim.so"
    if not target.exists() or target.stat().st_mtime < SHIM_SOURCE.stat().st_mtime:
        compiler = os.environ.get("CC") or shutil.which("cc") or "gcc"
        subprocess.run(
            [compiler, "-shared", "-fPIC", "-O2", "-o", str(target), str(SHIM_SOURCE), "-ldl"],
            check=True,
        )
    return target


def _die_with_parent() -> None:
    """Janus gets SIGTERM if the process that started it dies, however it dies (Linux)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class JanusConfig:
    host: str = LOCALHOST
    http_port: int = 0
    admin_port: int = 0
    api_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    admin_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    # Below Linux's ephemeral ports (32768-60999), where browsers put their own candidates.
    rtp_ports: tuple[int, int] = (20000, 29999)
    debug_level: int = 3  # warnings and errors only: Janus never logs SDP below level 5


def _configs(config: JanusConfig, folder: Path) -> None:
    lib = _libdir()
    keep_plugin, keep_transport = "libjanus_videoroom.so", "libjanus_http.so"
    plugins = ",".join(
        p.name for p in (lib / "plugins").glob("libjanus_*.so") if p.name != keep_plugin
    )
    transports = ",".join(
        p.name for p in (lib / "transports").glob("libjanus_*.so") if p.name != keep_transport
    )
    low, high = config.rtp_ports
    (folder / "janus.jcfg").write_text(
        f"""general: {{
    configs_folder = "{folder}"
    plugins_folder = "{lib / "plugins"}"
    transports_folder = "{lib / "transports"}"
    events_folder = "{lib / "events"}"
    loggers_folder = "{lib / "loggers"}"
    debug_level = {config.debug_level}
    api_secret = {json.dumps(config.api_secret)}
    admin_secret = {json.dumps(config.admin_secret)}
    # Salon's functions own every session and close it when the member goes: no keepalives.
    session_timeout = 0
    server_name = "salon-local-janus"
}}
media: {{
    rtp_port_range = "{low}-{high}"
}}
nat: {{
    ice_enforce_list = "lo"
    ignore_mdns = true
    full_trickle = false
}}
plugins: {{
    disable = "{plugins}"
}}
transports: {{
    disable = "{transports}"
}}
loggers: {{
    disable = "libjanus_jsonlog.so"
}}
events: {{
    broadcast = false
}}
"""
    )
    (folder / "janus.plugin.videoroom.jcfg").write_text(
        f"""general: {{
    string_ids = true
    admin_key = "{config.admin_secret}"
    lock_rtp_forward = true
}}
"""
    )
    (folder / "janus.transport.http.jcfg").write_text(
        f"""general: {{
    json = "compact"
    base_path = "/janus"
    http = true
    port = {config.http_port}
    ip = "{config.host}"
    https = false
}}
admin: {{
    admin_base_path = "/admin"
    admin_http = true
    admin_port = {config.admin_port}
    admin_ip = "{config.host}"
    admin_https = false
}}
cors: {{
}}
"""
    )


class JanusProcess:
    """One Janus, started and stopped by its own process id."""

    def __init__(self, config: JanusConfig | None = None) -> None:
        config = config or JanusConfig()
        # Ports of 0 become free ports now: the app's settings must name them up front.
        self.config = replace(
            config,
            http_port=config.http_port or free_port(config.host),
            admin_port=config.admin_port or free_port(config.host),
        )
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.config.http_port}/janus"

    @property
    def admin_url(self) -> str:
        return f"http://{self.config.host}:{self.config.admin_port}/admin"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout_s: float = 10.0) -> JanusProcess:
        shim = build_shim()
        self._folder = tempfile.TemporaryDirectory(prefix="salon-janus-")
        folder = Path(self._folder.name)
        _configs(self.config, folder)
        env = {**os.environ, "LD_PRELOAD": str(shim)}
        self._log = open(folder / "janus.log", "wb")
        self._process = subprocess.Popen(
            [JANUS, "-C", str(folder / "janus.jcfg"), "-F", str(folder), "-N"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"janus exited: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/info", timeout=1) as reply:
                    if json.load(reply).get("janus") == "server_info":
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("janus did not answer in time")

    def log_tail(self, lines: int = 30) -> str:
        if not self._folder:
            return ""
        path = Path(self._folder.name) / "janus.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if getattr(self, "_log", None):
            self._log.close()
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    def __enter__(self) -> JanusProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
