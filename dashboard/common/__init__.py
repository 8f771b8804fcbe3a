"""Pieces several dashboard features share: sanitising stored text, formatting numbers, small UI factories,
the figure basics, and the kept uploads on disk (classify keeps them, the monolith reads them)."""
