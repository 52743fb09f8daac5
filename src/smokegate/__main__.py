from smokegate.cli import entry

entry()
