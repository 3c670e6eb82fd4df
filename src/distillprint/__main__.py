"""``python -m distillprint``, the same as the ``distillprint`` command."""

from distillprint.cli import main

if __name__ == "__main__":
    main()
