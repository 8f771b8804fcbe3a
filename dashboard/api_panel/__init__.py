"""The "Use via API" panel: curl and Python snippets for this server's real URL, with copy buttons."""
