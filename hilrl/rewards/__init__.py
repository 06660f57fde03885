"""hilrl."""
