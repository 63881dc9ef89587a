"""The built-in recipes, shipped as package data of `framework` (see framework.resources)."""
