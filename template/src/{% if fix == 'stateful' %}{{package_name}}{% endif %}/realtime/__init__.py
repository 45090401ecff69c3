"""The realtime service: the long-lived processes that own live sessions.

`python -m <package>.realtime` runs it (app.py says why its own command).
"""
