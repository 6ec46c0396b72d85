"""The reference node, `ccn node`: registers at the edge, consents, and runs jobs offered over
the WebSocket protocol of ccn_proto.node_protocol.

Pure parts (config, backoff, decisions, credentials' format) are separate from the shells that
do I/O: `edge_http` (the /compute/* calls), `runner` (jobs off the event loop), `client` (the
WebSocket loop) and `node` (the whole life of a node, from credentials to Bye)."""
