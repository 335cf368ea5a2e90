"""``python -m imgsent`` runs the command line."""

from imgsent.cli.app import main

main()
