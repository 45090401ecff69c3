"""The multi-instance test suite: real instances, one shared store, one user story a test."""
