"""An AppConfig-Agent-compatible HTTP endpoint over moto, for the embedded stack.

moto stores applications, profiles and hosted configuration versions but has no appconfigdata and
no deployments. This serves ``GET /applications/{app}/environments/{env}/configurations/{profile}``
like the AppConfig Agent Lambda extension does on localhost:2772: the deployed configuration as the
body and its version in the ``Configuration-Version`` header. The deployed version is the one
recorded on the profile by ``swordfish flags`` (see ``swordfish.features.repository``).

In process:   with AppConfigAgent(moto_url) as agent: ... agent.url ...
As a process: python -m devstack.appconfig_agent --port N --moto-url URL
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from botocore.exceptions import BotoCoreError, ClientError
from swordfish import constants
from swordfish.features.flags import load_bundled
from swordfish.features.repository import AppConfigIds, FlagStoreError, MotoRepository
from swordfish.features.store import VERSION_HEADER

from devstack.services import free_port

PATH = re.compile(
    r"^/applications/(?P<app>[^/]+)/environments/(?P<env>[^/]+)/configurations/(?P<profile>[^/]+)$"
)


def seed_flags(
    moto_url: str,
    document: dict[str, Any] | None = None,
    *,
    region_name: str | None = None,
    application: str = constants.APPCONFIG_APPLICATION,
    profile: str = constants.APPCONFIG_FLAGS_PROFILE,
) -> AppConfigIds:
    """Create the application and flags profile in moto and deploy flags.json, unless already there.

    On AWS the CDK stack does this; here whoever starts the embedded stack does (idempotent).
    """
    repo = MotoRepository(moto_url, region_name=region_name, application=application, profile=profile)
    ids = repo.find_ids()
    if ids is None:
        app_id = repo.client.create_application(Name=application)["Id"]
        repo.client.create_configuration_profile(
            ApplicationId=app_id, Name=profile, LocationUri="hosted", Type="AWS.Freeform"
        )
        ids = repo.find_ids()
        assert ids is not None, "moto did not return the profile it just created"
    try:
        repo.deployed_version()
    except FlagStoreError:
        if document is None:
            bundled = load_bundled()
            if bundled is None:
                raise RuntimeError("flags.json is missing or invalid: cannot seed the flag store") from None
            document = bundled[0]
        repo.publish(document, "initial flags (seeded by the embedded stack)")
    return ids


class AppConfigAgent:
    def __init__(
        self,
        moto_url: str,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        region_name: str | None = None,
        seed: bool = True,
    ):
        self.moto_url = moto_url
        self.host, self.port = host, port or free_port()
        self.region_name = region_name
        self.seed = seed
        self._repos: dict[tuple[str, str, str], MotoRepository] = {}
        self._repos_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def repository(self, app: str, env: str, profile: str) -> MotoRepository:
        with self._repos_lock:
            key = (app, env, profile)
            if key not in self._repos:
                self._repos[key] = MotoRepository(
                    self.moto_url,
                    region_name=self.region_name,
                    application=app,
                    environment=env,
                    profile=profile,
                )
            return self._repos[key]

    def configuration(self, app: str, env: str, profile: str) -> tuple[int, dict[str, str], bytes]:
        if env != constants.APPCONFIG_ENVIRONMENT:
            # moto has no environments: only the one the stack deploys to exists here.
            return (
                404,
                {},
                _error(f"environment {env!r} not found (only {constants.APPCONFIG_ENVIRONMENT!r})"),
            )
        repo = self.repository(app, env, profile)
        try:
            version = repo.deployed_version()
            document = repo.get_version(version)
        except FlagStoreError as exc:
            repo.forget_ids()  # the profile may be created or re-created later
            return 404, {}, _error(str(exc))
        except (BotoCoreError, ClientError, OSError) as exc:
            return 502, {}, _error(f"moto unreachable at {self.moto_url}: {exc}")
        return 200, {VERSION_HEADER: version}, json.dumps(document).encode()

    def start(self) -> AppConfigAgent:
        if self.seed:
            seed_flags(self.moto_url, region_name=self.region_name)
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                match = PATH.match(urlsplit(self.path).path)
                if match is None:
                    status, headers, body = 404, {}, _error(f"unknown path {self.path}")
                else:
                    status, headers, body = agent.configuration(*(unquote(g) for g in match.groups()))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="appconfig-agent", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> AppConfigAgent:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _error(message: str) -> bytes:
    return json.dumps({"Message": message}).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="AppConfig-Agent-compatible endpoint over moto")
    parser.add_argument("--port", type=int, default=constants.APPCONFIG_AGENT_PORT)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--moto-url", required=True)
    parser.add_argument("--region", default=None)
    args = parser.parse_args(argv)
    agent = AppConfigAgent(args.moto_url, host=args.host, port=args.port, region_name=args.region).start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print(f"appconfig agent on {agent.url} serving {args.moto_url}", flush=True)
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
