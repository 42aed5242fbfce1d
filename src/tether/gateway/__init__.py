"""The gateway: an ASGI app that will hold connections, webhooks and syncs. For now it answers health checks."""

from tether.gateway.app import GatewaySettings, create_app

__all__ = ["GatewaySettings", "create_app"]
