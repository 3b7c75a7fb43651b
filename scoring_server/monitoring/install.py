"""What an app's monitoring is made of: each part registers its observers, request hooks and
routes here, from the server's configuration."""
from __future__ import annotations

from flask import Flask

from ..config import ServerConfig


def install_monitoring(app: Flask, config: ServerConfig) -> None:
    """Install every monitoring part ``config`` asks for on ``app``."""
