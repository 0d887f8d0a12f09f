"""Command line: python -m local.stripe --host 127.0.0.1 --port 8420."""

from .server import main

if __name__ == "__main__":
    main()
