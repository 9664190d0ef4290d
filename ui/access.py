"""Who may use the app: an optional login for the UI, and an admin token for operator actions (Unload, Stop)."""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping

from core.config import AppConfig, ConfigError
from core.errors import PlaygroundError

AUTH_ENV = "PLAYGROUND_AUTH"  # "user:password[,user:password...]"
ADMIN_ENV = "PLAYGROUND_ADMIN_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class NotAllowedError(PlaygroundError):
    """An operator action without the admin token."""


def login_pairs(cfg: AppConfig, environ: Mapping[str, str] = os.environ) -> list[tuple[str, str]] | None:
    """(user, password) pairs for gradio's `auth` from PLAYGROUND_AUTH or server.auth; None: no login."""
    raw = environ.get(AUTH_ENV, "").strip()
    if not raw:
        return sorted(cfg.server.auth.items()) or None
    pairs = []
    for item in raw.split(","):
        user, sep, password = item.strip().partition(":")
        if not sep or not user or not password:
            raise ConfigError(f"{AUTH_ENV} must be user:password pairs separated by commas.")
        pairs.append((user, password))
    return pairs


class OperatorGate:
    """Checks the admin token; without one configured, operator actions are open only on a loopback server."""

    def __init__(self, cfg: AppConfig, environ: Mapping[str, str] = os.environ) -> None:
        self.token = environ.get(ADMIN_ENV, "").strip() or cfg.server.admin_token
        self.open = self.token is None and cfg.server.host in LOOPBACK

    def check(self, given: str | None) -> None:
        """Raise NotAllowedError unless `given` is the admin token (or the server is local and has none)."""
        if self.open:
            return
        if self.token is None:
            raise NotAllowedError(f"Operator actions are off on this server: set {ADMIN_ENV} to enable them.")
        if not hmac.compare_digest((given or "").encode(), self.token.encode()):
            raise NotAllowedError("This needs the admin token (Resources tab, Admin token).")


def client_of(request: object | None) -> str | None:
    """Who is asking, for per-client limits: the browser session (or gradio_client's), None when unknown."""
    return getattr(request, "session_hash", None) or None
