"""`python -m fraudops.cli`: the same CLI as the `fraudops` console script."""

from fraudops.cli import main

if __name__ == "__main__":
    main()
