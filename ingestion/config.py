"""All configuration in one place: paths, targets and environment variables.

Read once by the CLI (``Settings.from_env()``) and passed down. Nothing else reads the
environment for Contrail settings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

TARGETS = ("duckdb", "postgres")


@dataclass(frozen=True)
class PostgresSettings:
    host: str = "127.0.0.1"
    port: int = 54329  # scripts/postgres.sh starts the project server here
    user: str = "postgres"
    password: str = ""
    database: str = "contrail"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PostgresSettings:
        return cls(
            host=env.get("CONTRAIL_PG_HOST", cls.host),
            port=int(env.get("CONTRAIL_PG_PORT", cls.port)),
            user=env.get("CONTRAIL_PG_USER", cls.user),
            password=env.get("CONTRAIL_PG_PASSWORD", cls.password),
            database=env.get("CONTRAIL_PG_DATABASE", cls.database),
        )

    def dsn(self) -> str:
        parts = [
            f"host={self.host}",
            f"port={self.port}",
            f"user={self.user}",
            f"dbname={self.database}",
        ]
        if self.password:
            parts.append(f"password={self.password}")
        return " ".join(parts)


@dataclass(frozen=True)
class Settings:
    """Where Contrail keeps its files and which warehouse it talks to."""

    data_dir: Path
    repo_root: Path = REPO_ROOT
    postgres: PostgresSettings = field(default_factory=PostgresSettings)
    # Share of bad rows above which a whole file is refused (the circuit breaker).
    max_bad_share: float = 0.05
    # Rows the loader reads, validates and lands at a time.
    chunk_rows: int = 250_000
    # Ingestion API keys: comma-separated CONTRAIL_API_KEYS and/or a file of one key a line.
    api_keys: str | None = None
    api_keys_file: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("CONTRAIL_DATA_DIR", REPO_ROOT / "data")).resolve()
        return cls(
            data_dir=data_dir,
            postgres=PostgresSettings.from_env(env),
            max_bad_share=float(env.get("CONTRAIL_MAX_BAD_SHARE", cls.max_bad_share)),
            api_keys=env.get("CONTRAIL_API_KEYS"),
            api_keys_file=Path(env["CONTRAIL_API_KEYS_FILE"])
            if env.get("CONTRAIL_API_KEYS_FILE")
            else None,
        )

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB file that loaders and dbt write."""
        return self.data_dir / "warehouse.duckdb"

    @property
    def serving_path(self) -> Path:
        """The published snapshot that readers (dashboards, API lookups) open read-only."""
        return self.data_dir / "serving" / "warehouse.duckdb"

    @property
    def serving_slots_dir(self) -> Path:
        """The two snapshot files a stream run alternates between (``ingestion.publish``)."""
        return self.data_dir / "serving" / "slots"

    @property
    def serving_artifacts_dir(self) -> Path:
        """dbt artifacts of each published snapshot, one folder per publish id."""
        return self.data_dir / "serving" / "artifacts"

    @property
    def dbt_target_dir(self) -> Path:
        """Where dbt writes manifest.json and run_results.json."""
        return self.data_dir / "dbt" / "target"

    @property
    def generated_dir(self) -> Path:
        return self.data_dir / "generated"

    @property
    def dbt_profiles_dir(self) -> Path:
        """Where the CLI keeps the profiles.yml it hands to dbt (a copy of profiles.yml.example)."""
        return self.data_dir / "dbt"

    def dbt_env(self) -> dict[str, str]:
        """Environment variables that profiles.yml.example reads."""
        pg = self.postgres
        return {
            "CONTRAIL_DUCKDB_PATH": str(self.warehouse_path),
            "CONTRAIL_PG_HOST": pg.host,
            "CONTRAIL_PG_PORT": str(pg.port),
            "CONTRAIL_PG_USER": pg.user,
            "CONTRAIL_PG_PASSWORD": pg.password,
            "CONTRAIL_PG_DATABASE": pg.database,
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DO_NOT_TRACK": "1",
        }
