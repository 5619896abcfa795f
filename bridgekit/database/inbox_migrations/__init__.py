"""Schema of the SQLite transaction inbox file (``<database>.inbox.db``, see
:mod:`bridgekit.database.inbox`), versioned apart from the main database's."""
