"""Test kit for connector authors: an in-memory network, a real Synapse, a Matrix client.

``FakeConnector`` implements every optional capability against a :class:`FakeNetwork` held in
memory, so the runtime's own tests (and yours) can drive both sides of a bridge.
:mod:`.synapse` starts a real Synapse (``matrix-synapse`` from PyPI) on free loopback ports with
your registration, :mod:`.matrix_client` is a small sync-based Matrix client for assertions,
and :mod:`.postgres` starts a private PostgreSQL, so a connector's tests can run end to end.
"""

from .fake import FakeChat, FakeClient, FakeConnector, FakeNetwork, SentItem

__all__ = ["FakeChat", "FakeClient", "FakeConnector", "FakeNetwork", "SentItem"]
