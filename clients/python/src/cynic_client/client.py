"""The control API's client: `Cynic` for the server, `Service` for one service, and handles for
the shapers and toxics added to it. The contract is docs/control-api.md; nothing here goes
beyond what it says."""

from __future__ import annotations

import http.client
import json
import secrets
import time
import urllib.parse
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

DEFAULT_API = "http://127.0.0.1:8474"

# A request's own time, on top of any `wait` the API is asked to spend: the API answers at once
# otherwise, so this bounds a server that hangs rather than any normal answer.
REQUEST_TIMEOUT = 30.0

# The API waits at most this long on one `GET /events?wait=` (docs/control-api.md).
MAX_EVENTS_WAIT = 60.0


class CynicError(Exception):
    """An error answer from the control API: its status, its message and, when one field of the
    request is at fault, that field's name."""

    def __init__(self, status: int, message: str, field: Optional[str] = None,
                 method: str = "", path: str = ""):
        self.status = status
        self.message = message
        self.field = field
        self.method = method
        self.path = path
        where = f"{method} {path}: " if method else ""
        blame = f" (field: {field})" if field else ""
        super().__init__(f"{where}{status} {message}{blame}")


class EventList(list):
    """The events of one `GET /events`, oldest first, with the API's `last_id`: pass it as
    `after=` to read only what comes next."""

    last_id: Optional[int] = None


class PluginList(list):
    """The plugins of `GET /plugins`, with the files cynic refused (`{"file", "reason"}`)."""

    refused: List[Dict[str, Any]] = []


class Cynic:
    """A client of one cynic's control API. Every method is one request (or, for
    `wait_for_event`, a bounded series of them) and raises `CynicError` on an error answer."""

    def __init__(self, api: str = DEFAULT_API, token: Optional[str] = None,
                 timeout: float = REQUEST_TIMEOUT):
        url = urllib.parse.urlsplit(api)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"api {api!r}: expected http://HOST:PORT")
        self.api = api.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._url = url
        # The services this client created and has not deleted, oldest first: the pytest
        # fixture deletes them when its test ends.
        self.created: List[str] = []

    def __repr__(self) -> str:
        return f"Cynic({self.api!r})"

    # Services

    def service(self, behaviour: str, name: Optional[str] = None, listen: str = "127.0.0.1:0",
                tls: Union[None, str, Dict[str, Any]] = None, **params: Any) -> "Service":
        """Creates a service and returns it; `listen` port 0 takes a free port, which the
        service's `address` then shows. Without a name, one is made from the behaviour
        (`reset-1a2b3c`). `tls` serves it over TLS: a certificate profile's name (`"expired"`;
        `tls_info()["profiles"]` lists them) or a dict of `profile`, `alpn`, `min_version`,
        `max_version`, `names`, or `certificate` and `key` files; trust `ca_certificate`."""
        body: Dict[str, Any] = {"behaviour": behaviour, "listen": listen, "parameters": params}
        if tls is not None:
            body["tls"] = tls
        for attempt in range(3):
            body["name"] = name or f"{behaviour}-{secrets.token_hex(3)}"
            try:
                data = self.request("POST", "/services", body)
                break
            except CynicError as error:
                # A made-up name that happens to exist: make another. Anything else is the caller's.
                if name or error.status != 409 or error.field != "name" or attempt == 2:
                    raise
        self.created.append(data["name"])
        return Service(self, data)

    def proxy(self, upstream: str, name: Optional[str] = None, listen: str = "127.0.0.1:0",
              **params: Any) -> "Service":
        """A service with behaviour `proxy` in front of `upstream` (`HOST:PORT`)."""
        return self.service("proxy", name=name, listen=listen, upstream=upstream, **params)

    # TLS

    def tls_info(self) -> Dict[str, Any]:
        """The local CA (`ca_certificate`, its path; `ca_pem`), the client certificate and key
        it signed (`client_certificate`, `client_key`) and the certificate `profiles`."""
        return self.request("GET", "/tls")

    @property
    def ca_certificate(self) -> str:
        """The path of the local CA's certificate: what a test trusts
        (`requests.get(url, verify=cynic.ca_certificate)`)."""
        return self.tls_info()["ca_certificate"]

    @property
    def client_certificate(self) -> Tuple[str, str]:
        """(certificate, key) paths of a client certificate the CA signed, for a
        `client-cert-required` service (`requests.get(url, cert=...)`)."""
        info = self.tls_info()
        return info["client_certificate"], info["client_key"]

    def services(self) -> List["Service"]:
        return [Service(self, data) for data in self.request("GET", "/services")]

    def get(self, name: str) -> "Service":
        return Service(self, self.request("GET", _path("services", name)))

    def delete(self, name: str) -> None:
        self.request("DELETE", _path("services", name))
        if name in self.created:
            self.created.remove(name)

    def reset(self) -> List["Service"]:
        """Back to the services cynic started with: those created through the API are removed."""
        return [Service(self, data) for data in self.request("POST", "/configuration/reset")]

    # Plugins, events, metrics

    def plugins(self) -> PluginList:
        answer = self.request("GET", "/plugins")
        plugins = PluginList(answer["plugins"])
        plugins.refused = answer.get("refused", [])
        return plugins

    def events(self, service: Optional[str] = None, after: Optional[int] = None,
               since: Optional[Any] = None, limit: Optional[int] = None,
               wait: Optional[float] = None) -> EventList:
        """The events matching, oldest first: one per connection, made when it ends. With `wait`
        (seconds, at most 60), an answer with none waits that long for one. `since` is an
        RFC 3339 text or a `datetime` (a naive one is local time)."""
        if isinstance(since, datetime):
            since = _rfc3339(since)
        query = {"service": service, "after": after, "since": since, "limit": limit, "wait": wait}
        answer = self.request("GET", "/events", query=query, wait=wait)
        events = EventList(answer["events"])
        events.last_id = answer.get("last_id")
        return events

    def wait_for_event(self, predicate: Optional[Callable[[Dict[str, Any]], bool]] = None, *,
                       timeout: float = 10.0, service: Optional[str] = None,
                       after: Optional[int] = None, **fields: Any) -> Dict[str, Any]:
        """The first event, oldest first, of `service` (all services by default) after the
        event id `after` (from the first by default) for which `predicate(event)` is true and
        whose top-level fields equal `fields` (`end="reset"`). Waits up to `timeout` seconds for
        it, then raises `TimeoutError`."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            remaining = deadline - time.monotonic()
            wait = min(max(remaining, 0.0), MAX_EVENTS_WAIT)
            events = self.events(service=service, after=after, limit=10000, wait=round(wait, 3))
            for event in events:
                seen += 1
                if all(event.get(key) == value for key, value in fields.items()) and (
                        predicate is None or predicate(event)):
                    return event
            ids = [event["id"] for event in events] + [events.last_id or 0, after or 0]
            after = max(ids)
            if time.monotonic() >= deadline:
                wanted = ", ".join([f"{k}={v!r}" for k, v in fields.items()]
                                   + ([f"predicate {predicate!r}"] if predicate else []))
                raise TimeoutError(
                    f"no event{' of service ' + repr(service) if service else ''} matched "
                    f"{wanted or 'anything'} within {timeout} s ({seen} seen)")

    def metrics(self) -> str:
        """`GET /metrics`: Prometheus text."""
        return self.request("GET", "/metrics")

    # The wire

    def request(self, method: str, path: str, body: Any = None,
                query: Optional[Dict[str, Any]] = None, wait: Optional[float] = None) -> Any:
        """One request to the API: the JSON answer decoded, text as text, None for 204. `wait`
        is how long the API may take beyond its usual answer (a `wait=` query)."""
        if query:
            pairs = {key: _query_value(value) for key, value in query.items() if value is not None}
            if pairs:
                path = f"{path}?{urllib.parse.urlencode(pairs)}"
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        connection_type = (http.client.HTTPSConnection if self._url.scheme == "https"
                           else http.client.HTTPConnection)
        connection = connection_type(self._url.hostname, self._url.port,
                                     timeout=self.timeout + (wait or 0))
        try:
            connection.request(method, self._url.path.rstrip("/") + path, payload, headers)
            response = connection.getresponse()
            status, text = response.status, response.read().decode("utf-8", "replace")
            content_type = response.getheader("Content-Type", "")
        finally:
            connection.close()
        is_json = "json" in content_type and text
        if status >= 400:
            raise _error(status, text, is_json, method, path)
        if status == 204 or not text:
            return None
        return json.loads(text) if is_json else text


class Service:
    """One service of a cynic, as the API last answered for it (`data`); `refresh()` asks again."""

    def __init__(self, client: Cynic, data: Dict[str, Any]):
        self.client = client
        self.data = data

    def __repr__(self) -> str:
        return f"Service(name={self.name!r}, behaviour={self.behaviour!r}, listen={self.listen!r})"

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def behaviour(self) -> str:
        return self.data["behaviour"]

    @property
    def parameters(self) -> Dict[str, str]:
        return self.data.get("parameters") or {}

    @property
    def listen(self) -> str:
        """The address bound, as the API shows it: `127.0.0.1:41234`, `[::1]:41234`, `unix:/path`."""
        return self.data["listen"]

    @property
    def address(self) -> Any:
        """What `socket.create_connection` takes: `(host, port)`; a Unix socket's path."""
        if self.listen.startswith("unix:"):
            return self.listen[len("unix:"):]
        host, _, port = self.listen.rpartition(":")
        return (host.strip("[]") or "127.0.0.1", int(port))  # `:PORT` is loopback

    @property
    def host(self) -> Optional[str]:
        return None if isinstance(self.address, str) else self.address[0]

    @property
    def port(self) -> Optional[int]:
        return None if isinstance(self.address, str) else self.address[1]

    @property
    def tls(self) -> Optional[Dict[str, Any]]:
        """How it speaks TLS (`profile`, `alpn`, ...); None for plain TCP."""
        return self.data.get("tls")

    @property
    def url(self) -> Optional[str]:
        """`http://HOST:PORT` for the HTTP behaviours, `https://` over TLS."""
        if self.host is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    @property
    def _path(self) -> str:
        return _path("services", self.name)

    def refresh(self) -> "Service":
        self.data = self.client.request("GET", self._path)
        return self

    def update(self, **fields: Any) -> "Service":
        """`PATCH /services/{name}` with these fields as they are: any of `behaviour`, `listen`,
        `parameters` (replaces them all), `shapers` (replaces the list), `enabled`, `seed`, `tls`."""
        self.data = self.client.request("PATCH", self._path, fields)
        return self

    def set(self, behaviour: Optional[str] = None, **params: Any) -> "Service":
        """A new behaviour with exactly these parameters; or, without one, these parameters
        changed and the others kept (`proxy.set(unreachable="reset")` keeps its upstream)."""
        if behaviour is not None:
            return self.update(behaviour=behaviour, parameters=params)
        return self.update(parameters={**self.refresh().parameters, **params})

    def enable(self) -> "Service":
        return self.update(enabled=True)

    def disable(self) -> "Service":
        """Stops listening (clients get "connection refused"); connections in flight go on."""
        return self.update(enabled=False)

    def delete(self) -> None:
        self.client.delete(self.name)

    def shaper(self, name: str, *, direction: str = "downstream", probability: float = 1.0,
               named: Optional[str] = None, **params: Any) -> "Shaper":
        """Adds the shaper `name` (`latency`, `bandwidth`, ...) after the service's others, for
        the connections made from now on. The handle it returns removes it with `remove()`, or
        at the end of a `with` block, however the block ends. `named` is its name within the
        service (default: cynic's choice, the shaper's own name when free)."""
        body = {"shaper": name, "direction": direction, "probability": probability,
                "parameters": params}
        if named is not None:
            body["name"] = named
        data = self.client.request("POST", f"{self._path}/shapers", body)
        return Shaper(self, data)

    def shapers(self) -> List[Dict[str, Any]]:
        return self.client.request("GET", f"{self._path}/shapers")

    def toxic(self, type: str, *, stream: str = "downstream", toxicity: float = 1.0,
              name: Optional[str] = None, **attributes: Any) -> "Toxic":
        """Adds a toxic in toxiproxy's vocabulary (`latency`, `bandwidth`, `slow_close`,
        `timeout`, `reset_peer`, `slicer`, `limit_data`) through its routes; for a proxy. The
        handle is a shaper's: `remove()`, or a `with` block."""
        body = {"type": type, "stream": stream, "toxicity": toxicity, "attributes": attributes}
        if name is not None:
            body["name"] = name
        data = self.client.request("POST", f"{_path('proxies', self.name)}/toxics", body)
        return Toxic(self, data)

    def toxics(self) -> List[Dict[str, Any]]:
        return self.client.request("GET", f"{_path('proxies', self.name)}/toxics")

    def events(self, after: Optional[int] = None, since: Optional[Any] = None,
               limit: Optional[int] = None, wait: Optional[float] = None) -> EventList:
        return self.client.events(service=self.name, after=after, since=since, limit=limit,
                                  wait=wait)

    def wait_for_event(self, predicate: Optional[Callable[[Dict[str, Any]], bool]] = None, *,
                       timeout: float = 10.0, after: Optional[int] = None,
                       **fields: Any) -> Dict[str, Any]:
        return self.client.wait_for_event(predicate, timeout=timeout, service=self.name,
                                          after=after, **fields)


class _Added:
    """Something added to a service that a `with` block, or `remove()`, takes away again."""

    def __init__(self, service: Service, data: Dict[str, Any]):
        self.service = service
        self.data = data
        self.removed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r} of service {self.service.name!r})"

    @property
    def name(self) -> str:
        return self.data["name"]

    def _path(self) -> str:
        raise NotImplementedError

    def remove(self) -> None:
        """Removes it; once done, or when it is gone already (its service deleted), a no-op."""
        if self.removed:
            return
        try:
            self.service.client.request("DELETE", self._path())
        except CynicError as error:
            if error.status != 404:
                raise
        self.removed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()


class Shaper(_Added):
    """A shaper added with `Service.shaper`."""

    def _path(self) -> str:
        return f"{self.service._path}/shapers/{_quote(self.name)}"


class Toxic(_Added):
    """A toxic added with `Service.toxic`."""

    def _path(self) -> str:
        return f"{_path('proxies', self.service.name)}/toxics/{_quote(self.name)}"


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def _path(collection: str, name: str) -> str:
    return f"/{collection}/{_quote(name)}"


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # `wait=5`, not `wait=5.0`
    return str(value)


def _rfc3339(moment: datetime) -> str:
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _error(status: int, text: str, is_json: bool, method: str, path: str) -> CynicError:
    message, field = text.strip() or http.client.responses.get(status, ""), None
    if is_json:
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict):
            message = str(body.get("error", message))
            field = body.get("field")
    return CynicError(status, message, field, method, path)

