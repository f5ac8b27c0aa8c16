"""`python -m acma` runs the command line, like the `acma` script."""

from acma.cli import main

main()
