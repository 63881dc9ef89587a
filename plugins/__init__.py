"""Built-in components, registered through the same entry-point group as third-party plugins."""
