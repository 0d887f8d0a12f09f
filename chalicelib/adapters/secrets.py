"""Secrets: from the environment when given there, else from SSM through Powertools (cached)."""

from __future__ import annotations

from chalicelib.config import Settings

SECRET_CACHE_SECONDS = 300


def jwt_secret(settings: Settings) -> str:
    if settings.jwt_secret:
        return settings.jwt_secret
    if not settings.jwt_secret_parameter:
        raise RuntimeError("Set SALON_JWT_SECRET or SALON_JWT_SECRET_PARAMETER.")
    # Imported here: only the first token operation of a cold start pays for it.
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_parameter(
        settings.jwt_secret_parameter, decrypt=True, max_age=SECRET_CACHE_SECONDS
    )
    return str(value)
