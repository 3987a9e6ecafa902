"""A client of cynic's control API, and a pytest plugin (the `cynic` fixture) that runs cynic
for a test session. See clients/python/README.md."""

from .client import Cynic, CynicError, EventList, PluginList, Service, Shaper, Toxic
from .server import CynicServer, CynicServerError, find_binary

__all__ = ["Cynic", "CynicError", "CynicServer", "CynicServerError", "EventList", "PluginList",
           "Service", "Shaper", "Toxic", "find_binary"]
