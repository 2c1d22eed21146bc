"""Tessera: a vector database in Python that speaks Qdrant's API."""

__version__ = "0.1.0"
# The Qdrant API version Tessera implements; clients check it for compatibility.
QDRANT_API_VERSION = "1.19.0"
