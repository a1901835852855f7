"""`python -m bot.cli`: the same as the `zoufang` console script."""

from bot.cli import main

main()
