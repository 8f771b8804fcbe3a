"""A real headless Chromium driven through dash_duo."""
