"""The built-in Tron-compatible hub port.

:class:`HubServer` speaks tron's commander protocol (port 6093 style, and optionally
the authenticated 9877 style with :class:`AuthConfig`) in front of a
:class:`~bridge.core.Router`: commanders see every routed actor as if it were behind
the real Tron hub. See ``protocol_specs/hub.md``.
"""

from .auth import AuthConfig, Login, commander_name, password_digest
from .command import HubCommand
from .perms import Permissions, PermsVerbs
from .server import DEFAULT_INIT_COMMANDS, HubConnection, HubServer
from .verbs import HubVerbs, legacy_link

__all__ = ["HubServer", "HubCommand", "HubConnection", "HubVerbs", "AuthConfig", "Login",
           "commander_name", "password_digest", "legacy_link", "DEFAULT_INIT_COMMANDS",
           "Permissions", "PermsVerbs"]
