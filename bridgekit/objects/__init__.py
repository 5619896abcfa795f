"""The runtime's objects: each owns its row, its connector metadata and its live state.

:class:`~bridgekit.objects.user.User` (a Matrix user of the bridge) and
:class:`~bridgekit.objects.user_login.UserLogin` (one of its logins to a network). The services
that keep them (e.g. :class:`bridgekit.logins.LoginService`) make one object per row and cache it.
"""
