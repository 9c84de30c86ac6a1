"""Scripts that maintain the repository itself (not part of the installed project)."""
