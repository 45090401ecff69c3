"""`python -m <package>.realtime`: the realtime service, with its hand-over on SIGTERM."""

from .app import main

if __name__ == "__main__":
    main()
