"""The recipe JSON schemas, shipped as package data of `framework` (see framework.resources)."""
