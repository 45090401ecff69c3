"""The development upstream of the package named by BENCH_PACKAGE, streaming each reply as one
burst (no pause between words): stateful_relay.py times the relay of events, not the pacing."""

import importlib
import os

dev_upstream = importlib.import_module(f"{os.environ['BENCH_PACKAGE']}.dev_upstream")
dev_upstream.WORD_PAUSE_SECONDS = 0
app = dev_upstream.app
