"""Pieces several dashboard features share: sanitising stored text, formatting numbers, small UI factories,
the glossary of every term the page explains, the figure basics, and the kept uploads on disk (classify keeps
them, the monolith and the thumbnails read them)."""
