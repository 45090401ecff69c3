"""The stateful-server fix: each live session has one owner, a long-lived realtime process that
holds its upstream connection; who owns what, the inboxes and the transcripts live in the store."""
