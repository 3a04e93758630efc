"""Contrail ingestion: generate, enrich and land airline survey data."""
