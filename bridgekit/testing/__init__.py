"""Test kit for connector authors: an in-memory network and helpers.

``FakeConnector`` implements every optional capability against a :class:`FakeNetwork` held in
memory, so the runtime's own tests (and yours) can drive both sides of a bridge.
"""

from .fake import FakeChat, FakeClient, FakeConnector, FakeNetwork, SentItem

__all__ = ["FakeChat", "FakeClient", "FakeConnector", "FakeNetwork", "SentItem"]
