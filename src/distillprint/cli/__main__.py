"""``python -m distillprint.cli``."""

from distillprint.cli import main

main()
