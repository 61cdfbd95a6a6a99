"""Settings of every function, read once from the environment the template sets."""

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    """Deployment settings; the template's parameters arrive here."""

    model_config = ConfigDict(frozen=True)

    allowed_endpoints: frozenset[str] = Field(default=frozenset())
    # API Gateway's REST integration gives up at 29 s: the model gets less, so the
    # gateway can still say why it gave up.
    sync_timeout_seconds: float = Field(default=25.0, gt=0, le=27)
    connect_timeout_seconds: float = Field(default=2.0, gt=0)

    def allows(self, endpoint: str) -> bool:
        """Tell whether this deployment may invoke ``endpoint``."""
        return endpoint in self.allowed_endpoints


def _names(value: str) -> frozenset[str]:
    return frozenset(name.strip() for name in value.split(",") if name.strip())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read the settings once per execution environment."""
    env = os.environ
    values: dict[str, object] = {
        "allowed_endpoints": _names(env.get("ALLOWED_ENDPOINTS", "")),
    }
    if "SYNC_TIMEOUT_SECONDS" in env:
        values["sync_timeout_seconds"] = env["SYNC_TIMEOUT_SECONDS"]
    return Settings.model_validate(values)
