"""`python -m ghostha`."""

from ghostha.cli import main

main()
