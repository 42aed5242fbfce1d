"""The gateway: an ASGI app answering health checks and receiving webhooks into the durable inbox."""

from tether.gateway.app import create_app
from tether.gateway.config import GatewaySettings, WebhookSource, load_config

__all__ = ["GatewaySettings", "WebhookSource", "create_app", "load_config"]
