"""The pytest plugin: a `cynic` fixture per test on one cynic per session (`cynic_server`).

Found by pytest through the package's `pytest11` entry point once it is installed."""

from __future__ import annotations

import pytest

from .client import Cynic, CynicError
from .server import CynicServer, CynicServerError


@pytest.fixture(scope="session")
def cynic_server():
    """One `cynic serve --api 127.0.0.1:0` for the session, from `$CYNIC` or PATH; stopped at
    its end."""
    server = CynicServer()
    try:
        server.start()
    except CynicServerError as error:
        pytest.fail(str(error), pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def cynic(cynic_server):
    """A `Cynic` client of the session's cynic. When the test ends, the services it created
    are deleted and cynic's configuration is reset, so the next test starts clean."""
    _alive(cynic_server)
    client = cynic_server.client()
    yield client
    _alive(cynic_server)
    for name in list(reversed(client.created)):
        try:
            client.delete(name)
        except CynicError as error:
            if error.status != 404:  # the test deleted it itself
                raise
    client.reset()


def _alive(server: CynicServer) -> None:
    try:
        server.check()
    except CynicServerError as error:
        pytest.fail(str(error), pytrace=False)
