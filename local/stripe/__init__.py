"""Dev-only Stripe emulator for Salon: localstripe extended with Connect, idempotency and tests."""

from .server import build_app, reset, serve_in_thread, start
from .state import STATE, Settings

__all__ = ["STATE", "Settings", "build_app", "reset", "serve_in_thread", "start"]
