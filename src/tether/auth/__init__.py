"""Credentials: the auth protocol and static schemes (bearer token, API key, HTTP Basic)."""

from tether.auth._protocol import Auth, StaticAuth
from tether.auth._static import APIKey, Basic, Bearer

__all__ = ["APIKey", "Auth", "Basic", "Bearer", "StaticAuth"]
