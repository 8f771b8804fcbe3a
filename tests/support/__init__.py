"""Test plumbing shared by every layer: helpers, the stand-in model and worker, running servers, dashboard fixtures."""
