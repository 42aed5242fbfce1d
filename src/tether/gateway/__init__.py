"""The gateway: an ASGI app for health checks, webhooks into the durable inbox, and the connections API."""

from tether.gateway.app import create_app
from tether.gateway.config import GatewaySettings, Integration, WebhookSource, load_config

__all__ = ["GatewaySettings", "Integration", "WebhookSource", "create_app", "load_config"]
