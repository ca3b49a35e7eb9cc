import sys

from purejaxvpg.tools.cli import run

sys.exit(run())
