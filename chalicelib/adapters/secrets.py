"""Secrets: from the environment when given there, else from SSM through Powertools (cached)."""

from __future__ import annotations

from chalicelib.config import Settings

SECRET_CACHE_SECONDS = 300


def secret(value: str, parameter: str, name: str) -> str:
    """`value` if set, else the SSM SecureString `parameter`, cached for five minutes."""
    if value:
        return value
    if not parameter:
        raise RuntimeError(f"Set {name} or {name}_PARAMETER.")
    # Imported here: only the first use in a cold start pays for it.
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_parameter(parameter, decrypt=True, max_age=SECRET_CACHE_SECONDS))


def jwt_secret(settings: Settings) -> str:
    return secret(settings.jwt_secret, settings.jwt_secret_parameter, "SALON_JWT_SECRET")


def stripe_key(settings: Settings) -> str:
    return secret(
        settings.stripe_secret_key, settings.stripe_secret_key_parameter, "SALON_STRIPE_SECRET_KEY"
    )


def stripe_webhook_secret(settings: Settings, connect: bool) -> str:
    if connect:
        return secret(
            settings.stripe_connect_webhook_secret,
            settings.stripe_connect_webhook_secret_parameter,
            "SALON_STRIPE_CONNECT_WEBHOOK_SECRET",
        )
    return secret(
        settings.stripe_webhook_secret,
        settings.stripe_webhook_secret_parameter,
        "SALON_STRIPE_WEBHOOK_SECRET",
    )


def janus_api_secret(settings: Settings) -> str:
    return secret(
        settings.janus_api_secret,
        settings.janus_api_secret_parameter,
        "SALON_JANUS_API_SECRET",
    )


def janus_admin_secret(settings: Settings) -> str:
    return secret(
        settings.janus_admin_secret,
        settings.janus_admin_secret_parameter,
        "SALON_JANUS_ADMIN_SECRET",
    )
