"""sessionfix: a Copier template for FastAPI projects whose sessions survive serverless and
multi-instance deployment, and the tools around it."""
