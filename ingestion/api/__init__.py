"""The ingestion API: clients post surveys, the API validates and journals them for delivery."""

from ingestion.api.app import create_app
from ingestion.api.config import ApiConfig

__all__ = ["ApiConfig", "create_app"]
