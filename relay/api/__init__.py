"""The HTTP API: app factory, one controller per resource, problem documents."""
