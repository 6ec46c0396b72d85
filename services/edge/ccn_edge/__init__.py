"""The edge: the public gateway nodes talk to (HTTP /compute/*, WebSocket /ws)."""
