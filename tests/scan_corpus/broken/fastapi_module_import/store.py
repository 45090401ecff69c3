"""The transcripts of every chat, in this process."""

transcripts: dict[str, list[str]] = {}
